/**
 * The admission gate, pure: MemberPort's check, what a port's place says about its inputs, which
 * ownership records let it move a port; the holding bridge in TvdNetwork's check and read-back;
 * the vif's vifname= in the xl config, read back, and in the running domain's comparison.
 */
import { driftMarker } from "../../provider/core/define";
import { resetProgramDeclarations, type OwnerRecord } from "../../provider/core/ownership";
import { parsePortLink } from "../../provider/dom0/memberPorts";
import { memberPortSchema } from "../../provider/resources/memberPort/args";
import {
  memberPortLifecycle as port,
  crlSeen,
  ownershipProblems,
  portInputsSeen,
} from "../../provider/resources/memberPort/provider";
import { tvdNetworkSchema } from "../../provider/resources/tvdNetwork/args";
import { tvdNetworkLifecycle as net } from "../../provider/resources/tvdNetwork/provider";
import { inputsSeen, observeNetwork } from "../../provider/resources/tvdNetwork/observe";
import { guestLifecycle as guest } from "../../provider/resources/guest/provider";
import { parseXlConfig, renderXlConfig } from "../../provider/xl/config";
import { renderGuestConfig, renderVifSpec } from "../../provider/xl/domains";
import { observeGuestConfig } from "../../provider/xl/observe";
import { runningDiffers } from "../../provider/xl/running";

const connection = {
  host: "10.0.0.1",
  port: 22,
  privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
  hostKeyFingerprint: `SHA256:${"A".repeat(43)}`,
};
const DIGEST = "ab".repeat(32);
const base = {
  connection,
  port: "tvp-red-01",
  domain: "red-01",
  bridge: "tvd-red",
  holdingBridge: "tvh-red",
  admission: DIGEST,
};
const v = memberPortSchema.parse(base);
const OWNER = "p/s MemberPort red-01-port";

beforeEach(() => resetProgramDeclarations());

describe("MemberPort check", () => {
  it("takes a member's port with the defaults: admitted", async () => {
    const r = await port.check({}, { owner: OWNER, ...base });
    expect(r.failures ?? []).toEqual([]);
    expect(r.inputs).toMatchObject({ admitted: true });
  });

  it.each([
    [{ port: "vif3.0" }, "port", "xl's own vif<domid>.<devid>"],
    [{ port: "a-name-far-too-long" }, "port", "1 to 15"],
    [{ holdingBridge: "tvd-red" }, "holdingBridge", "is the TVD bridge itself"],
    [{ admission: "" }, "admission", "attested PCR digest"],
    [{ admission: "not hex; rm -rf /" }, "admission", "40 to 128 lowercase hex digits"],
    [{ bridge: "eth0" }, "bridge", "names a link dom0"],
    [{ admission: undefined }, "admission", "is required to admit a member"],
    [{ attestedAt: "yesterday" }, "attestedAt", "ISO 8601"],
  ])("refuses %j naming %s and the fix", async (over, property, says) => {
    const r = await port.check({}, { owner: OWNER, ...base, ...over });
    expect(r.failures).toEqual([
      expect.objectContaining({ property, reason: expect.stringContaining(says) }),
    ]);
  });

  it("holds without an admission: a member whose attestation failed, with its refusal", async () => {
    const r = await port.check(
      {},
      {
        owner: OWNER,
        ...base,
        admission: undefined,
        admitted: false,
        refusal: "member red-01 is not admitted",
      },
    );
    expect(r.failures).toBeUndefined();
    expect(r.inputs).toMatchObject({ admitted: false, refusal: "member red-01 is not admitted" });
  });

  it("re-admits in place when the attestation's digest changes; another port or bridge replaces it, the old one on hold first", async () => {
    const olds = { ...base, admitted: true };
    expect(await port.diff("tvp-red-01", olds, { ...olds, admission: "cd".repeat(32) })).toEqual({
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });
    expect(await port.diff("tvp-red-01", olds, { ...olds, port: "tvp-red-02" })).toEqual({
      changes: true,
      replaces: ["port"],
      deleteBeforeReplace: true,
    });
    expect(await port.diff("tvp-red-01", olds, olds)).toEqual({ changes: false });
  });
});

describe("where the port is, as inputs", () => {
  it.each([
    [{ exists: true, master: "tvd-red" }, { admitted: true }],
    [{ exists: true, master: "tvh-red" }, { admitted: false }],
    [
      { exists: true, master: "br0" },
      { admitted: false, bridge: driftMarker("tvd-red", "foreign", "tvp-red-01 is on br0") },
    ],
    [
      { exists: true },
      { admitted: false, bridge: driftMarker("tvd-red", "foreign", "tvp-red-01 is on no bridge") },
    ],
    [
      { exists: false },
      {
        port: driftMarker(
          "tvp-red-01",
          "missing",
          "domain red-01 is not running, or its vif has another name",
        ),
      },
    ],
  ])("%j reads as %j", (seen, inputs) => {
    expect(portInputsSeen(v, seen).seen).toEqual(inputs);
  });

  it("a restarted guest's port, back on hold, is an in-place change back to admitted", async () => {
    const olds = { ...base, admitted: false };
    expect(await port.diff("tvp-red-01", olds, { ...base, admitted: true })).toMatchObject({
      changes: true,
      replaces: [],
    });
  });

  it("parses ip -j link show: the bridge, none, or no such device", () => {
    expect(parsePortLink(0, '[{"ifname":"tvp-red-01","master":"tvh-red"}]')).toEqual({
      exists: true,
      master: "tvh-red",
    });
    expect(parsePortLink(0, '[{"ifname":"tvp-red-01"}]')).toEqual({ exists: true, master: undefined });
    expect(parsePortLink(1, "")).toEqual({ exists: false });
  });
});

describe("the CRL a member holds", () => {
  const CRL = "-----BEGIN X509 CRL-----\nMA==\n-----END X509 CRL-----\n";
  const withCrl = memberPortSchema.parse({ ...base, crlPem: CRL });

  it("is drift when the member holds none (a restarted guest) or another, nothing when it holds the TVD's", () => {
    expect(crlSeen(withCrl, CRL)).toEqual({});
    expect(crlSeen(withCrl, CRL.trim())).toEqual({});
    expect(crlSeen(withCrl, "")).toEqual({
      crlPem: driftMarker("the TVD's CRL", "missing", "red-01 holds none"),
    });
    const old = "-----BEGIN X509 CRL-----\nMQ==\n-----END X509 CRL-----\n";
    expect(crlSeen(withCrl, old)).toEqual({ crlPem: old });
    // Without one declared, the node is not read at all.
    expect(crlSeen(v, undefined)).toEqual({});
  });

  it("must be a CRL that fits one xenstore node", async () => {
    const big = `-----BEGIN X509 CRL-----\n${"A".repeat(4000)}\n-----END X509 CRL-----\n`;
    for (const [crlPem, says] of [
      [big, "4000 bytes"],
      ["-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n", "a CRL in PEM"],
    ]) {
      const r = await port.check({}, { owner: OWNER, ...base, crlPem });
      expect(r.failures).toEqual([
        expect.objectContaining({ property: "crlPem", reason: expect.stringContaining(says) }),
      ]);
    }
  });
});

describe("which ports and bridges a MemberPort may touch", () => {
  const rec = (key: string, owner?: string, role?: string, exists = true): [string, OwnerRecord] => [
    key,
    { key, owner, role, exists },
  ];
  const NET = "p/s TvdNetwork red-net-a";
  const ours = () =>
    new Map([
      rec("link:tvp-red-01", "p/s Guest red-01", "guest vif"),
      rec("bridge:tvd-red", NET, "TVD bridge"),
      rec("bridge:tvh-red", NET, "TVD holding bridge"),
    ]);

  it("its own stack's guest vif between its own stack's network's two bridges", () => {
    expect(ownershipProblems(v, OWNER, ours())).toEqual([]);
  });

  it("refuses a port nobody made, another stack's port, a holding bridge of another network, naming each", () => {
    const records = ours();
    records.set(...rec("link:tvp-red-01", undefined, undefined, true));
    records.set(...rec("bridge:tvh-red", "p/s TvdNetwork blue-net-a", "TVD holding bridge"));
    expect(ownershipProblems(v, OWNER, records)).toEqual([
      "tvp-red-01 is not made by pulumi-tvd (no ownership record): declare it as the guest vif tvp-red-01 (port) of this stack",
      `tvh-red belongs to p/s TvdNetwork blue-net-a, not to the network of bridge tvd-red (${NET})`,
    ]);
    const other = ours();
    other.set(...rec("link:tvp-red-01", "q/prod Guest red-01", "guest vif"));
    other.set(...rec("bridge:tvd-red", NET, "TVD holding bridge"));
    expect(ownershipProblems(v, OWNER, other)).toEqual([
      "tvp-red-01 is q/prod Guest red-01's guest vif, not a guest vif of p/s",
      "tvd-red is p/s TvdNetwork red-net-a's TVD holding bridge, not a TVD bridge of p/s",
    ]);
    const none = new Map<string, OwnerRecord>();
    expect(ownershipProblems(v, OWNER, none)).toEqual([
      "guest vif tvp-red-01 does not exist: declare it in this stack (port)",
      "TVD bridge tvd-red does not exist: declare it in this stack (bridge)",
      "TVD holding bridge tvh-red does not exist: declare it in this stack (holdingBridge)",
    ]);
  });
});

describe("TvdNetwork's holding bridge", () => {
  const netBase = { connection, bridge: "tvd-red", vni: 100, localIp: "10.99.0.1", holdingBridge: "tvh-red" };

  it("is its own bridge, named like any TVD bridge", async () => {
    expect((await net.check({}, { owner: "p/s TvdNetwork n", ...netBase })).failures ?? []).toEqual([]);
    const same = await net.check({}, { owner: "p/s TvdNetwork n", ...netBase, holdingBridge: "tvd-red" });
    expect(same.failures).toEqual([
      expect.objectContaining({
        property: "holdingBridge",
        reason: expect.stringContaining("TVD bridge itself"),
      }),
    ]);
  });

  it("is added or renamed in place", async () => {
    const olds = { ...netBase, peers: [], mtu: 1450, dstPort: 4789, adopt: false };
    expect(await net.diff("tvd-red", { ...olds, holdingBridge: undefined }, olds)).toMatchObject({
      changes: true,
      replaces: [],
    });
  });

  const links = (holdFlags: string[] | undefined) => [
    { ifname: "tvd-red", mtu: 1450, flags: ["UP"], linkinfo: { info_kind: "bridge" } },
    {
      ifname: "vx100",
      mtu: 1450,
      master: "tvd-red",
      linkinfo: { info_kind: "vxlan", info_data: { id: 100, local: "10.99.0.1", port: 4789 } },
    },
    ...(holdFlags
      ? [{ ifname: "tvh-red", mtu: 1450, flags: holdFlags, linkinfo: { info_kind: "bridge" } }]
      : []),
  ];
  const declared = tvdNetworkSchema.parse(netBase);

  it.each([
    [["BROADCAST", "MULTICAST"], undefined],
    [undefined, driftMarker("tvh-red", "missing")],
    [
      ["BROADCAST", "MULTICAST", "UP"],
      driftMarker("tvh-red", "changed", "tvh-red is up: held ports could reach one another"),
    ],
  ])("flags %j read as holdingBridge %j", (flags, marker) => {
    const seen = inputsSeen(declared, observeNetwork(links(flags), [], "tvd-red", "vx100", "tvh-red"));
    expect(seen.holdingBridge).toEqual(marker);
  });

  it("is not looked for when none is declared", () => {
    const seen = observeNetwork(links(undefined), [], "tvd-red", "vx100");
    expect(seen.hold).toBeUndefined();
    expect(inputsSeen({ ...declared, holdingBridge: undefined }, seen)).not.toHaveProperty("holdingBridge");
  });
});

describe("vifname=", () => {
  it("is written into the vif spec and read back from the config", () => {
    expect(renderVifSpec({ bridge: "tvh-red", mac: "00:16:3e:00:00:01", vifname: "tvp-red-01" })).toBe(
      "bridge=tvh-red,mac=00:16:3e:00:00:01,vifname=tvp-red-01",
    );
    const text = renderXlConfig(
      renderGuestConfig({
        name: "red-01",
        memoryMiB: 64,
        vcpus: 1,
        boot: { kind: "direct", kernel: "/k" },
        disks: [],
        vifs: [{ bridge: "tvh-red", vifname: "tvp-red-01" }],
      }),
    );
    const observed = observeGuestConfig(text);
    expect(observed.ok && observed.value.vifs).toEqual([{ bridge: "tvh-red", vifname: "tvp-red-01" }]);
    expect(parseXlConfig(text).get("vif")).toEqual(["bridge=tvh-red,vifname=tvp-red-01"]);
  });

  it("restarts a running domain whose vif has another name (libxl's nic ifname)", () => {
    const desired = 'name = "red-01"\nvif = [ "bridge=tvh-red,vifname=tvp-red-01" ]\n';
    expect(runningDiffers({ nics: [{ bridge: "tvh-red", ifname: "tvp-red-01" }] }, desired)).toEqual([]);
    expect(runningDiffers({ nics: [{ bridge: "tvh-red" }] }, desired)).toEqual(["vif"]);
    // Undeclared, xl's own name is whatever it is.
    expect(
      runningDiffers({ nics: [{ bridge: "tvh-red", ifname: "x" }] }, 'vif = [ "bridge=tvh-red" ]\n'),
    ).toEqual([]);
  });

  it("is refused in xl's own vif<domid>.<devid> form, and two guests of one program may not share one", async () => {
    const guestBase = {
      connection,
      name: "red-01",
      baseImage: "/var/lib/xen/images/base.raw",
      kernel: "/boot/vmlinuz",
      vifs: [{ bridge: "tvh-red", vifname: "vif1.0" }],
    };
    const bad = await guest.check({}, { owner: "p/s Guest red-01", ...guestBase });
    expect(bad.failures).toEqual([
      expect.objectContaining({
        property: "vifs.0.vifname",
        reason: expect.stringContaining("tvp-<member>"),
      }),
    ]);
    const vifs = [{ bridge: "tvh-red", vifname: "tvp-red-01" }];
    expect((await guest.check({}, { owner: "p/s Guest red-01", ...guestBase, vifs })).failures ?? []).toEqual(
      [],
    );
    const twice = await guest.check({}, { owner: "p/s Guest red-02", ...guestBase, name: "red-02", vifs });
    expect(twice.failures).toEqual([
      expect.objectContaining({
        property: "vifs.0.vifname",
        reason: expect.stringContaining("also declared by p/s Guest red-01"),
      }),
    ]);
  });
});
