/** TvdNetwork's pure parts: check failures (before any host is touched) and diff classification. */
import { tvdNetworkLifecycle } from "../../provider/resources/tvdNetwork/provider";
import { diffTvdNetwork, inputsSeen, observeNetwork } from "../../provider/resources/tvdNetwork/diff";
import { tvdNetworkSchema } from "../../provider/resources/tvdNetwork/args";

const connection = {
  host: "10.0.0.1",
  port: 22,
  privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
  hostKeyFingerprint: `SHA256:${"A".repeat(43)}`,
};
const base = {
  connection,
  bridge: "tvd-red",
  vni: 100,
  localIp: "10.99.0.1",
  peers: ["10.99.0.2", "10.99.0.3"],
};

async function failures(inputs: Record<string, unknown>) {
  return (await tvdNetworkLifecycle.check({}, inputs)).failures ?? [];
}

describe("TvdNetwork check", () => {
  it("accepts a network and fills the defaults", async () => {
    expect(await failures(base)).toEqual([]);
    expect(tvdNetworkSchema.parse(base)).toMatchObject({ mtu: 1450, dstPort: 4789 });
  });

  it.each([
    ["bridge", "-x", /starting with a letter or digit/],
    ["bridge", "tvd-this-is-too-long", /1 to 15/],
    ["bridge", "br;reboot", /interface name/],
    ["bridge", "a b", /interface name/],
    ["bridge", "eth0", /already uses/],
    ["bridge", "vx100", /already uses/],
    ["bridge", "lo", /already uses/],
    ["vni", 0, /1 to 16777215/],
    ["vni", 16777216, /1 to 16777215/],
    ["vni", 1.5, /whole number/],
    ["localIp", "10.99.0.1; rm -rf /", /IPv4 address/],
    ["localIp", "224.0.0.1", /unicast/],
    ["localIp", "0.0.0.0", /unicast/],
    ["mtu", 100, /576 to 9000/],
    ["dstPort", 70000, /UDP port/],
  ])("rejects %s = %j, naming the property and the fix", async (property, value, reason) => {
    const f = await failures({ ...base, [property]: value });
    expect(f).toEqual([{ property, reason: expect.stringMatching(reason) }]);
  });

  it("rejects a hostile or duplicate peer, and this host's own address as a peer", async () => {
    const f = await failures({ ...base, peers: ["10.99.0.2", "$(reboot)", "10.99.0.2", "10.99.0.1"] });
    expect(f).toEqual([
      { property: "peers.1", reason: expect.stringMatching(/IPv4 address/) },
      { property: "peers.2", reason: "10.99.0.2 is already peers[0]: list each host once" },
      { property: "peers.3", reason: expect.stringMatching(/this host's own localIp/) },
    ]);
  });

  it("reports every failure at once", async () => {
    const f = await failures({ ...base, bridge: "", vni: -1, localIp: "x", extra: 1 });
    expect(f.map((x) => x.property).sort()).toEqual(["(inputs)", "bridge", "localIp", "vni"]);
  });
});

describe("TvdNetwork diff", () => {
  const olds = {
    ...base,
    mtu: 1450,
    dstPort: 4789,
    bridgePresent: true,
    vxlanPresent: true,
    vxlanOnBridge: true,
  };

  it.each([
    ["nothing", {}, [], []],
    ["peer order only", { peers: ["10.99.0.3", "10.99.0.2"] }, [], []],
    ["a peer added", { peers: [...base.peers, "10.99.0.4"] }, ["peers"], []],
    ["a peer removed", { peers: ["10.99.0.2"] }, ["peers"], []],
    ["the MTU", { mtu: 1400 }, ["mtu"], []],
    ["the VNI", { vni: 101 }, ["vni"], ["vni"]],
    ["the bridge", { bridge: "tvd-blue" }, ["bridge"], ["bridge"]],
    ["the local address", { localIp: "10.99.0.9" }, ["localIp"], ["localIp"]],
    ["the UDP port", { dstPort: 8472 }, ["dstPort"], ["dstPort"]],
    ["the host", { connection: { ...connection, host: "10.0.0.2" } }, ["connection", "host"], ["host"]],
  ])("%s", (_what, change, changed, replaces) => {
    const d = diffTvdNetwork(olds, { ...base, ...change });
    expect(d.changed).toEqual(changed);
    expect(d.replaces).toEqual(replaces);
    expect(d.repair).toBe(false);
  });

  it("repairs a missing bridge or VXLAN in place", () => {
    expect(diffTvdNetwork({ ...olds, bridgePresent: false }, base)).toMatchObject({
      repair: true,
      replaces: [],
    });
    expect(diffTvdNetwork({ ...olds, vxlanOnBridge: false }, base)).toMatchObject({
      repair: true,
      replaces: [],
    });
  });

  it("replaces when the VXLAN of that name carries another VNI", () => {
    expect(diffTvdNetwork({ ...olds, vxlanId: 7 }, base).replaces).toEqual(["vni"]);
  });
});

describe("TvdNetwork observation", () => {
  const links = [
    { ifname: "lo" },
    { ifname: "tvd-red", mtu: 1450, linkinfo: { info_kind: "bridge" } },
    {
      ifname: "vx100",
      mtu: 1450,
      master: "tvd-red",
      linkinfo: { info_kind: "vxlan", info_data: { id: 100, local: "10.99.0.1", port: 4789 } },
    },
    { ifname: "vif3.0", master: "tvd-red", linkinfo: { info_kind: "veth" } },
  ];
  const fdb = [
    { mac: "aa:bb:cc:dd:ee:ff", master: "tvd-red" },
    { mac: "00:00:00:00:00:00", dst: "10.99.0.3" },
  ];

  it("reports peers from the fdb and the guests' ports, as the inputs they came from", () => {
    const seen = observeNetwork(links, fdb, "tvd-red", "vx100");
    expect(seen).toEqual({
      bridgePresent: true,
      vxlanPresent: true,
      vxlanOnBridge: true,
      vxlanId: 100,
      localIp: "10.99.0.1",
      dstPort: 4789,
      mtu: 1450,
      peers: ["10.99.0.3"],
      ports: ["vif3.0"],
    });
    const v = tvdNetworkSchema.parse(base);
    expect(inputsSeen(v, seen).peers).toEqual(["10.99.0.3"]);
  });

  it("sees nothing when neither device exists", () => {
    expect(observeNetwork([{ ifname: "lo" }], [], "tvd-red", "vx100")).toMatchObject({
      bridgePresent: false,
      vxlanPresent: false,
      peers: [],
      ports: [],
    });
  });
});
