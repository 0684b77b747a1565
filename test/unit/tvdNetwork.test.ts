/**
 * TvdNetwork's definition, pure: check failures and in-program conflicts (before any host is
 * touched), change classes through the lifecycle's diff, and what the host's links stand for.
 */
import { UNKNOWN, driftMarker } from "../../provider/core/define";
import { resetProgramDeclarations } from "../../provider/core/ownership";
import { tvdNetworkSchema } from "../../provider/resources/tvdNetwork/args";
import { inputsSeen, observeNetwork } from "../../provider/resources/tvdNetwork/observe";
import { definition, tvdNetworkLifecycle as net } from "../../provider/resources/tvdNetwork/provider";

type Props = Record<string, unknown>;

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
const OWNER = "p/s TvdNetwork red-a";

beforeEach(() => resetProgramDeclarations());

async function failures(inputs: Props, owner = OWNER) {
  return (await net.check({}, { owner, ...inputs })).failures ?? [];
}

/** What check makes of the inputs, as the engine passes them on. */
async function checked(inputs: Props, olds: Props = {}): Promise<Props> {
  const r = await net.check(olds, { owner: OWNER, ...inputs });
  expect(r.failures ?? []).toEqual([]);
  return r.inputs as Props;
}

describe("TvdNetwork check", () => {
  it("accepts a network and fills the defaults in", async () => {
    expect(await failures(base)).toEqual([]);
    const first = await checked(base);
    expect(first).toMatchObject({ mtu: 1450, dstPort: 4789, adopt: false });
    // Checked again from what the state keeps (preview, then up): the same inputs.
    expect(await checked(base, first)).toEqual(first);
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
    ["adopt", "yes", /boolean/],
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
    const f = await failures({ ...base, bridge: "", vni: -1, localIp: "x" });
    expect(f.map((x) => x.property).sort()).toEqual(["bridge", "localIp", "vni"]);
  });
});

describe("TvdNetwork in one program", () => {
  it("refuses a second network on one host's bridge, naming the other", async () => {
    expect(await failures(base)).toEqual([]);
    expect(await failures({ ...base, vni: 200 }, "p/s TvdNetwork blue-a")).toEqual([
      {
        property: "bridge",
        reason:
          "tvd-red on 10.0.0.1:22 is also declared by p/s TvdNetwork red-a (its TVD bridge); give each resource its own",
      },
    ]);
  });

  it("refuses a second network on one host's VNI (its VXLAN), naming the other", async () => {
    expect(await failures(base)).toEqual([]);
    expect(await failures({ ...base, bridge: "tvd-blue" }, "p/s TvdNetwork blue-a")).toEqual([
      {
        property: "vni",
        reason:
          "vx100 on 10.0.0.1:22 is also declared by p/s TvdNetwork red-a (its TVD VXLAN); give each resource its own",
      },
    ]);
  });

  it("allows one bridge and VNI per host, and a network checked again (preview, then up)", async () => {
    expect(await failures(base)).toEqual([]);
    expect(await failures(base)).toEqual([]);
    const b = { ...base, connection: { ...connection, host: "10.0.0.2" }, localIp: "10.99.0.2" };
    expect(await failures({ ...b, peers: ["10.99.0.1"] }, "p/s TvdNetwork red-b")).toEqual([]);
  });

  it("forgets what a network no longer declares", async () => {
    expect(await failures(base)).toEqual([]);
    expect(await failures({ ...base, bridge: "tvd-red2", vni: 101 })).toEqual([]);
    expect(await failures(base, "p/s TvdNetwork other")).toEqual([]);
  });

  it("owns its bridge and its VXLAN, each placed by its own property", () => {
    expect(definition.artifacts!(tvdNetworkSchema.parse(base))).toEqual([
      { type: "bridge", name: "tvd-red", role: "TVD bridge", property: "bridge" },
      { type: "link", name: "vx100", role: "TVD VXLAN", property: "vni" },
    ]);
  });
});

describe("TvdNetwork diff", () => {
  /** Stored outputs of a network as created: inputs with defaults, as the host has them. */
  async function stored(over: Props = {}): Promise<Props> {
    return { ...(await checked(base)), providerVersion: "0.1.0", ...over };
  }
  async function diff(olds: Props, news: Props) {
    return net.diff("tvd-red", olds, await checked(news));
  }

  it.each([
    ["nothing", {}, []],
    ["a peer added", { peers: [...base.peers, "10.99.0.4"] }, []],
    ["a peer removed", { peers: ["10.99.0.2"] }, []],
    [
      "the peers' order (an update that changes nothing on the host)",
      { peers: ["10.99.0.3", "10.99.0.2"] },
      [],
    ],
    ["the MTU", { mtu: 1400 }, []],
    ["adopt", { adopt: true }, []],
    ["the credentials", { connection: { ...connection, user: "xen" } }, []],
    ["the VNI", { vni: 101 }, ["vni"]],
    ["the bridge", { bridge: "tvd-blue" }, ["bridge"]],
    ["the local address", { localIp: "10.99.0.9" }, ["localIp"]],
    ["the UDP port", { dstPort: 8472 }, ["dstPort"]],
    ["the host", { connection: { ...connection, host: "10.0.0.2" } }, ["connection"]],
  ])("%s", async (what, change, replaces) => {
    const d = await diff(await stored(), { ...base, ...change });
    if (what === "nothing") return expect(d).toEqual({ changes: false });
    expect(d).toEqual({ changes: true, replaces, deleteBeforeReplace: replaces.length > 0 });
  });

  it("repairs a missing bridge or VXLAN, or the VXLAN off the bridge, in place", async () => {
    for (const drift of [
      { bridge: driftMarker("tvd-red", "missing") },
      { vni: driftMarker(100, "missing", "no VXLAN vx100") },
      { vni: driftMarker(100, "changed", "vx100 is not on tvd-red") },
      { bridge: driftMarker("tvd-red", "missing"), vni: driftMarker(100, "missing") },
    ]) {
      expect(await diff(await stored(drift), base)).toEqual({
        changes: true,
        replaces: [],
        deleteBeforeReplace: false,
      });
    }
  });

  it("puts peers and MTU the host lost back in place", async () => {
    expect(await diff(await stored({ peers: ["10.99.0.2"] }), base)).toMatchObject({ replaces: [] });
    expect(await diff(await stored({ mtu: 1500 }), base)).toMatchObject({ changes: true, replaces: [] });
    const odds = driftMarker(1450, "changed", "tvd-red has MTU 1500, vx100 1450");
    expect(await diff(await stored({ mtu: odds }), base)).toMatchObject({ changes: true, replaces: [] });
    // Checked again from the refreshed inputs, the declared MTU stays.
    expect((await checked(base, { ...(await stored()), mtu: odds })).mtu).toBe(1450);
  });

  it("replaces when the VXLAN of that name carries another VNI, local address or port", async () => {
    expect(await diff(await stored({ vni: 7 }), base)).toMatchObject({ replaces: ["vni"] });
    expect(await diff(await stored({ localIp: "10.99.0.9" }), base)).toMatchObject({
      replaces: ["localIp"],
    });
  });

  it("a missing VXLAN and a new VNI: the new VNI replaces", async () => {
    const d = await diff(await stored({ vni: driftMarker(100, "missing") }), { ...base, vni: 101 });
    expect(d).toMatchObject({ replaces: ["vni"] });
  });

  it("classes values unknown at preview by their declared class", async () => {
    const preview = async (news: Props) => {
      const r = await net.check(await stored(), { owner: OWNER, ...news });
      expect(r.failures ?? []).toEqual([]);
      return net.diff("tvd-red", await stored(), r.inputs as Props);
    };
    expect(await preview({ ...base, peers: UNKNOWN })).toMatchObject({ changes: true, replaces: [] });
    expect(await preview({ ...base, peers: ["10.99.0.2", UNKNOWN] })).toMatchObject({ replaces: [] });
    expect(await preview({ ...base, bridge: UNKNOWN })).toMatchObject({ replaces: ["bridge"] });
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
    { mac: "00:00:00:00:00:00", dst: "10.99.0.2" },
  ];
  const v = tvdNetworkSchema.parse(base);
  const seenOf = (l: unknown[], f: unknown[] = fdb) =>
    inputsSeen(v, observeNetwork(l, f, "tvd-red", "vx100"));

  it("reads an untouched network back as declared, whatever guests joined the bridge", () => {
    expect(observeNetwork(links, fdb, "tvd-red", "vx100")).toEqual({
      bridgePresent: true,
      vxlanPresent: true,
      vxlanOnBridge: true,
      vxlanId: 100,
      localIp: "10.99.0.1",
      dstPort: 4789,
      bridgeMtu: 1450,
      vxlanMtu: 1450,
      peers: ["10.99.0.3", "10.99.0.2"],
    });
    expect({ ...v, ...seenOf(links) }).toEqual(v);
    const more = [...links, { ifname: "vif4.0", master: "tvd-red", linkinfo: { info_kind: "veth" } }];
    expect(seenOf(more)).toEqual(seenOf(links));
  });

  it("reports peers lost or added, declared ones first", () => {
    expect(seenOf(links, [{ mac: "00:00:00:00:00:00", dst: "10.99.0.3" }]).peers).toEqual(["10.99.0.3"]);
    const extra = [...fdb, { mac: "00:00:00:00:00:00", dst: "10.99.0.1" }];
    expect(seenOf(links, extra).peers).toEqual(["10.99.0.2", "10.99.0.3", "10.99.0.1"]);
  });

  it("reports the devices' MTU, and a bridge and VXLAN at odds as drift on the declared one", () => {
    const mtu = (br: number, vx: number) =>
      seenOf([links[0], { ...links[1], mtu: br }, { ...links[2], mtu: vx }]).mtu;
    expect(mtu(1500, 1500)).toBe(1500);
    expect(mtu(1500, 1450)).toBe("1450 (changed on the host: tvd-red has MTU 1500, vx100 1450)");
    expect(mtu(1450, 9000)).toBe("1450 (changed on the host: tvd-red has MTU 1450, vx100 9000)");
    expect(seenOf([links[0], { ...links[1], mtu: 1400 }]).mtu).toBe(1400);
  });

  it("marks a missing bridge on bridge, a missing VXLAN or one off the bridge on vni", () => {
    expect(seenOf([links[0], links[2]]).bridge).toBe("tvd-red (missing on the host)");
    expect(seenOf([links[0], links[1]])).toEqual({
      vni: "100 (missing on the host: no VXLAN vx100)",
      mtu: 1450,
    });
    expect(seenOf([links[0], links[1], { ...links[2], master: undefined }]).vni).toBe(
      "100 (changed on the host: vx100 is not on tvd-red)",
    );
    expect(seenOf([{ ifname: "lo" }], [])).toEqual({
      bridge: "tvd-red (missing on the host)",
      vni: "100 (missing on the host: no VXLAN vx100)",
    });
    // A link of that name that is no bridge is no bridge of ours.
    expect(seenOf([links[0], { ifname: "tvd-red", linkinfo: { info_kind: "dummy" } }, links[2]]).bridge).toBe(
      "tvd-red (missing on the host)",
    );
  });

  it("reports a VXLAN of our name with another id, address or port as it is", () => {
    const other = {
      ...links[2],
      linkinfo: { info_kind: "vxlan", info_data: { id: 7, local: "10.99.0.9", port: 8472 } },
    };
    expect(seenOf([links[0], links[1], other])).toMatchObject({
      vni: 7,
      localIp: "10.99.0.9",
      dstPort: 8472,
    });
  });
});
