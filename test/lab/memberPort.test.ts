/**
 * Membership follows attestation, on the network (issue 16.3), proven with traffic between two lab
 * hosts: TVD "red" on dom0-a and dom0-b with a holding bridge on each. Members' vifs are declared
 * on the holding bridge with a vifname of their own (as real Xen's vif-bridge would place them),
 * so every member comes up held; a MemberPort admits one by moving its port onto the TVD bridge.
 * A held member cannot ping in or out; admitting it lets it; removing its MemberPort (the member
 * leaving the TVD) or its attestation failing cuts it off; a restarted guest comes back held and
 * shows as drift until `up` admits it again. Guests are xl configs written by hand, each vif a veth
 * into a network namespace of its own; each guest's vif name is recorded as its Guest's, as the
 * Guest resource does.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Dom0 } from "../../provider/dom0/dom0";
import { createTvdCa, issueIdentityCertificate } from "../../provider/pki/x509";
import { revocationListLifecycle as crls } from "../../provider/resources/revocationList/provider";
import { holdPort, memberPortLifecycle as port } from "../../provider/resources/memberPort/provider";
import { tvdNetworkLifecycle as net } from "../../provider/resources/tvdNetwork/provider";
import { connectionSchema } from "../../provider/transport/connection";
import { cfg, startTestLab, type TestLab } from "../support/lab";

jest.setTimeout(240_000);

let lab: TestLab;
const [A, B] = ["dom0-a", "dom0-b"];
type Props = Record<string, unknown>;
const connection: Record<string, Props> = {};
const ip = (h: string) => lab.host(h).underlayIp;
const DIGEST = "5d".repeat(32);

beforeAll(async () => {
  lab = await startTestLab({ hosts: 2, diskMiB: 256 });
  for (const name of [A, B]) connection[name] = lab.connection(name);
});

afterAll(async () => lab?.stop());

const dom0Of = async (host: string) => Dom0.connect(connectionSchema.parse(connection[host]));

/**
 * The members: their host, address, MAC and port (vifname). A TVD member's MAC is fixed (the plan
 * derives it), so a restarted member is the same station to the others' ARP caches.
 */
const members = {
  "red-a": { host: A, ip: "10.50.0.11", mac: "00:16:3e:50:00:11", vif: "tvp-red-a" },
  "red-b": { host: B, ip: "10.50.0.12", mac: "00:16:3e:50:00:12", vif: "tvp-red-b" },
  "red-c": { host: A, ip: "10.50.0.13", mac: "00:16:3e:50:00:13", vif: "tvp-red-c" },
} as const;
type Member = keyof typeof members;

/** A member's guest as a TVD would declare it: its vif on the holding bridge, named. */
async function startGuest(m: Member): Promise<void> {
  const { host, ip: addr, mac, vif } = members[m];
  await lab.writeFile(
    host,
    `/etc/xen/${m}.cfg`,
    cfg.guest(m, { memory: 32 }) + `vif=["bridge=tvh-red,mac=${mac},ip=${addr}/24,vifname=${vif}"]\n`,
  );
  const r = await lab.xl(host, "create", `/etc/xen/${m}.cfg`);
  if (r.exitCode !== 0) throw new Error(`xl create ${m} on ${host}: ${r.stderr}`);
}

/** Which bridge a port is on, as the host shows it. */
async function masterOf(host: string, dev: string): Promise<string> {
  const r = await lab.sh(host, 'ip -o link show dev "$1" | grep -o " master [^ ]*" | cut -d" " -f3', dev);
  return r.stdout.trim();
}

const netOwner = (host: string) => `lab/test TvdNetwork red-net-${host}`;
const portOwner = (m: Member) => `lab/test MemberPort ${m}-port`;

async function checked(
  l: typeof net | typeof port,
  owner: string,
  inputs: Props,
  olds: Props = {},
): Promise<Props> {
  const r = await l.check(olds, { owner, ...inputs });
  expect(r.failures ?? []).toEqual([]);
  return r.inputs as Props;
}

const portInputs = (m: Member, over: Props = {}): Props => ({
  connection: connection[members[m].host],
  port: members[m].vif,
  domain: m,
  bridge: "tvd-red",
  holdingBridge: "tvh-red",
  admission: DIGEST,
  ...over,
});

/** Does `from` reach `to`'s address (one ping from inside its namespace)? */
const reaches = (from: Member, to: Member) => lab.guestPings(members[from].host, from, members[to].ip);

/** Every pair's reachability, both ways, as "a>b" strings: what answers. */
async function reachable(): Promise<string[]> {
  const out: string[] = [];
  const all = Object.keys(members) as Member[];
  for (const from of all)
    for (const to of all) if (from !== to && (await reaches(from, to))) out.push(`${from}>${to}`);
  return out;
}

const nets: Record<string, Props> = {};
const ports: Partial<Record<Member, Props>> = {};

describe("the admission gate", () => {
  it("TvdNetwork makes a holding bridge beside the TVD bridge: down, its own, with the TVD's MTU", async () => {
    for (const host of [A, B]) {
      const inputs = await checked(net, netOwner(host), {
        connection: connection[host],
        bridge: "tvd-red",
        holdingBridge: "tvh-red",
        vni: 100,
        localIp: ip(host),
        peers: [A, B].filter((h) => h !== host).map(ip),
      });
      nets[host] = (await net.create(inputs)).outs;
      expect(nets[host]).toMatchObject({ holdingBridge: "tvh-red", mtu: 1450 });
      const hold = await lab.check(host, "ip -j -d link show dev tvh-red");
      const [link] = JSON.parse(hold) as Array<{ flags: string[]; mtu: number; master?: string }>;
      expect(link.flags).not.toContain("UP");
      expect(link.mtu).toBe(1450);
      expect(link.master).toBeUndefined();
      const records = await (await dom0Of(host)).owners([{ type: "bridge", name: "tvh-red" }]);
      expect(records.get("bridge:tvh-red")).toMatchObject({
        owner: netOwner(host),
        role: "TVD holding bridge",
      });
    }
  });

  it("every member comes up held: its named vif on the holding bridge, and no ping in or out", async () => {
    const dom0s = { [A]: await dom0Of(A), [B]: await dom0Of(B) };
    for (const m of Object.keys(members) as Member[]) {
      // What the Guest resource claims before xl create: the vif's name is its own on the host.
      await dom0s[members[m].host].claim(
        `lab/test Guest ${m}`,
        [{ type: "link", name: members[m].vif, role: "guest vif", property: "vifs.0.vifname" }],
        false,
      );
      await startGuest(m);
      expect(await masterOf(members[m].host, members[m].vif)).toBe("tvh-red");
    }
    expect(await reachable()).toEqual([]);
  });

  it("an admitted member pings the other admitted one across hosts; the member not admitted cannot ping in or out", async () => {
    for (const m of ["red-a", "red-b"] as const) {
      const { id, outs } = await port.create(await checked(port, portOwner(m), portInputs(m)));
      expect(id).toBe(members[m].vif);
      expect(outs).toMatchObject({ admitted: true, portBridge: "tvd-red", owner: portOwner(m) });
      ports[m] = outs;
    }
    expect(await masterOf(A, "tvp-red-a")).toBe("tvd-red");
    expect(await masterOf(A, "tvp-red-c")).toBe("tvh-red");
    // red-c is on red-a's host and in its subnet: only the gate keeps it out.
    expect(await reachable()).toEqual(["red-a>red-b", "red-b>red-a"]);
  });

  it("admitting the held member lets it in", async () => {
    ports["red-c"] = (await port.create(await checked(port, portOwner("red-c"), portInputs("red-c")))).outs;
    expect((await reachable()).sort()).toEqual(
      ["red-a>red-b", "red-a>red-c", "red-b>red-a", "red-b>red-c", "red-c>red-a", "red-c>red-b"].sort(),
    );
  });

  it("a member whose attestation failed since (admitted: false) is put back on hold", async () => {
    const olds = ports["red-c"]!;
    const news = await checked(port, portOwner("red-c"), portInputs("red-c", { admitted: false }), olds);
    expect(await port.diff("tvp-red-c", olds, news)).toMatchObject({ changes: true, replaces: [] });
    ports["red-c"] = (await port.update("tvp-red-c", olds, news)).outs;
    expect(ports["red-c"]).toMatchObject({ admitted: false, portBridge: "tvh-red" });
    expect(await reachable()).toEqual(["red-a>red-b", "red-b>red-a"]);
    // Attested again: back in.
    const again = await checked(port, portOwner("red-c"), portInputs("red-c"), ports["red-c"]);
    ports["red-c"] = (await port.update("tvp-red-c", ports["red-c"], again)).outs;
    expect(await reaches("red-c", "red-b")).toBe(true);
  });

  it("removing a member (its MemberPort deleted) cuts it off; delete is idempotent", async () => {
    await port.delete("tvp-red-c", ports["red-c"]!);
    await port.delete("tvp-red-c", ports["red-c"]!);
    expect(await masterOf(A, "tvp-red-c")).toBe("tvh-red");
    expect(await reachable()).toEqual(["red-a>red-b", "red-b>red-a"]);
  });

  it("a removed member's certificate is rejected by the others, with the CRL they hold in xenstore", async () => {
    const ca = createTvdCa({ tvdName: "red", validityDays: 30 });
    const certOf = (m: Member) =>
      issueIdentityCertificate({
        caCertPem: ca.certPem,
        caKeyPem: ca.keyPem,
        commonName: m,
        dnsNames: [m],
        ipAddresses: [members[m].ip],
        validityDays: 7,
      });
    const certs = { "red-a": certOf("red-a"), "red-b": certOf("red-b"), "red-c": certOf("red-c") };
    const listOwner = "lab/test TvdRevocationList red-crl";
    const listInputs = (serials: string[]) => ({
      owner: listOwner,
      caCertPem: ca.certPem,
      caKeyPem: ca.keyPem,
      memberSerials: serials,
    });
    const all = (
      await crls.create((await crls.check({}, listInputs(Object.values(certs).map((c) => c.serial)))).inputs)
    ).outs;
    // red-c was removed: the next list revokes it.
    const after = (
      await crls.update(
        "red",
        all,
        (await crls.check(all, listInputs([certs["red-a"].serial, certs["red-b"].serial]))).inputs,
      )
    ).outs;
    expect(after.revokedSerials).toEqual([certs["red-c"].serial]);
    for (const m of ["red-a", "red-b"] as const) {
      const news = await checked(port, portOwner(m), portInputs(m, { crlPem: after.crlPem }), ports[m]);
      ports[m] = (await port.update(members[m].vif, ports[m]!, news)).outs;
    }
    // What red-a holds, read from its own data path, is what it checks its peers with.
    const dir = mkdtempSync(path.join(os.tmpdir(), "tvd-crl-"));
    try {
      const held = await lab.check(A, 'xenstore-read "/local/domain/$(xl domid red-a)/data/tvd/crl"');
      const file = (name: string, text: string) => {
        writeFileSync(path.join(dir, name), text);
        return path.join(dir, name);
      };
      const verify = (m: Member) =>
        spawnSync(
          "openssl",
          [
            "verify",
            "-crl_check",
            "-CAfile",
            file("ca.pem", ca.certPem),
            "-CRLfile",
            file("crl.pem", held),
            file(`${m}.pem`, certs[m].certPem),
          ],
          { encoding: "utf8" },
        );
      const removed = verify("red-c");
      expect(removed.status).not.toBe(0);
      expect(`${removed.stdout}${removed.stderr}`).toContain("certificate revoked");
      expect(verify("red-b").status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // Where everything is as declared, a refresh shows nothing.
    const read = await port.read("tvp-red-a", ports["red-a"]!);
    expect(read.props).toEqual(ports["red-a"]);
  });

  it("a failed attestation holds the member's port at once, and its next attestation (attestedAt) admits it again", async () => {
    const dom0 = await dom0Of(B);
    const place = {
      connection: connectionSchema.parse(connection[B]),
      port: "tvp-red-b",
      domain: "red-b",
      bridge: "tvd-red",
      holdingBridge: "tvh-red",
    };
    // What MemberAttestation does when red-b's quote no longer proves its baseline.
    const ctx = { dom0, owner: "lab/test MemberAttestation red-b-attestation", state: {} };
    expect(await holdPort(ctx, place)).toBe(dom0.endpoint);
    expect(await masterOf(B, "tvp-red-b")).toBe("tvh-red");
    expect(await reachable()).toEqual([]);
    // Held already: nothing moves. Another stack's attestation may not touch it.
    await holdPort(ctx, place);
    await expect(holdPort({ ...ctx, owner: "other/stack MemberAttestation red-b" }, place)).rejects.toThrow(
      "tvp-red-b is lab/test Guest red-b's guest vif, not a guest vif of other/stack",
    );
    expect(await masterOf(B, "tvp-red-b")).toBe("tvh-red");
    // Its MemberPort's state still says admitted: a new attestation is a change, and places it again.
    const news = await checked(
      port,
      portOwner("red-b"),
      portInputs("red-b", { crlPem: ports["red-b"]!.crlPem, attestedAt: new Date().toISOString() }),
      ports["red-b"],
    );
    expect(await port.diff("tvp-red-b", ports["red-b"]!, news)).toMatchObject({
      changes: true,
      replaces: [],
    });
    ports["red-b"] = (await port.update("tvp-red-b", ports["red-b"]!, news)).outs;
    expect(await masterOf(B, "tvp-red-b")).toBe("tvd-red");
    expect(await reachable()).toEqual(["red-a>red-b", "red-b>red-a"]);
  });

  it("a restarted guest comes back held: a refresh shows admitted false, and up admits it again", async () => {
    expect((await lab.xl(B, "destroy", "red-b")).exitCode).toBe(0);
    await startGuest("red-b");
    expect(await masterOf(B, "tvp-red-b")).toBe("tvh-red");
    expect(await reaches("red-a", "red-b")).toBe(false);
    expect(await reaches("red-b", "red-a")).toBe(false);

    const read = await port.read("tvp-red-b", ports["red-b"]!);
    expect(read.props).toMatchObject({
      admitted: false,
      portBridge: "tvh-red",
      // A new domain: its data path holds no CRL yet.
      crlPem: "the TVD's CRL (missing on the host: red-b holds none)",
    });
    expect(read.inputs).toMatchObject({ admitted: false });
    const crlPem = ports["red-b"]!.crlPem as string;
    const news = await checked(
      port,
      portOwner("red-b"),
      portInputs("red-b", { crlPem }),
      read.inputs as Props,
    );
    expect(await port.diff("tvp-red-b", read.props!, news)).toMatchObject({ changes: true, replaces: [] });
    ports["red-b"] = (await port.update("tvp-red-b", read.props!, news)).outs;
    expect(await reachable()).toEqual(["red-a>red-b", "red-b>red-a"]);
    expect(await lab.check(B, 'xenstore-read "/local/domain/$(xl domid red-b)/data/tvd/crl"')).toBe(
      crlPem.trimEnd() + "\n",
    );
    // Where it belongs, a refresh shows nothing.
    const clean = await port.read("tvp-red-b", ports["red-b"]);
    expect(await port.diff("tvp-red-b", clean.props!, news)).toEqual({ changes: false });
  });

  it("never touches a port or bridge that is not its stack's: refuses, naming what is there", async () => {
    const endpoint = (await dom0Of(A)).endpoint;
    // A port nobody recorded (made by hand on the holding bridge).
    await lab.sh(A, "ip link add hand0 type veth peer name hand1 && ip link set hand0 master tvh-red");
    await expect(
      port.create(
        await checked(
          port,
          "lab/test MemberPort hand",
          portInputs("red-a", { port: "hand0", domain: "hand" }),
        ),
      ),
    ).rejects.toThrow(
      `refusing to move port hand0 of hand on ${endpoint}: pulumi-tvd moves only its own guests' ports between its own TVD bridges:\n` +
        "  - hand0 is not made by pulumi-tvd (no ownership record): declare it as the guest vif hand0 (port) of this stack",
    );
    expect(await masterOf(A, "hand0")).toBe("tvh-red");
    // Another stack's MemberPort on this stack's member.
    await expect(
      port.create(await checked(port, "other/stack MemberPort red-a", portInputs("red-a"))),
    ).rejects.toThrow("tvp-red-a is lab/test Guest red-a's guest vif, not a guest vif of other/stack");
    // A member's port moved by hand onto a bridge that is not the TVD's.
    await lab.sh(A, "ip link add br-x type bridge && ip link set tvp-red-c master br-x");
    const read = await port.read("tvp-red-c", ports["red-c"]!);
    expect(read.props).toMatchObject({
      admitted: false,
      bridge: "tvd-red (foreign on the host: tvp-red-c is on br-x)",
    });
    await expect(port.create(await checked(port, portOwner("red-c"), portInputs("red-c")))).rejects.toThrow(
      `port tvp-red-c on ${endpoint} is on bridge br-x, not on tvd-red or tvh-red; pulumi-tvd does not take a port from a bridge that is not its TVD's`,
    );
    expect(await masterOf(A, "tvp-red-c")).toBe("br-x");
    await lab.sh(A, "ip link set tvp-red-c master tvh-red && ip link del br-x && ip link del hand0");
  });

  it("a holding bridge brought up by hand is drift on holdingBridge, and up puts it down again", async () => {
    await lab.sh(A, "ip link set dev tvh-red up");
    const inputs = await checked(net, netOwner(A), {
      connection: connection[A],
      bridge: "tvd-red",
      holdingBridge: "tvh-red",
      vni: 100,
      localIp: ip(A),
      peers: [ip(B)],
    });
    const read = await net.read("tvd-red", nets[A]);
    expect(read.props).toMatchObject({
      holdingBridge: "tvh-red (changed on the host: tvh-red is up: held ports could reach one another)",
    });
    const news = await checked(net, netOwner(A), inputs, read.inputs as Props);
    expect(await net.diff("tvd-red", read.props!, news)).toMatchObject({ changes: true, replaces: [] });
    nets[A] = (await net.update("tvd-red", read.props!, news)).outs;
    expect(nets[A]).toMatchObject({ holdingBridge: "tvh-red" });
    const [link] = JSON.parse(await lab.check(A, "ip -j link show dev tvh-red")) as Array<{
      flags: string[];
    }>;
    expect(link.flags).not.toContain("UP");
  });

  it("the network is not deleted while a member is held or admitted; once guests are gone both bridges go", async () => {
    await expect(net.delete("tvd-red", nets[A])).rejects.toThrow(
      /holding bridge tvh-red on .* still has ports tvp-red-c; guests must go first/,
    );
    for (const m of ["red-a", "red-b"] as const) await port.delete(members[m].vif, ports[m]!);
    expect(await masterOf(A, "tvp-red-a")).toBe("tvh-red");
    for (const m of Object.keys(members) as Member[]) {
      expect((await lab.xl(members[m].host, "destroy", m)).exitCode).toBe(0);
      await (await dom0Of(members[m].host)).release(`lab/test Guest ${m}`, [`link:${members[m].vif}`]);
    }
    // A port whose guest is gone: nothing to put back.
    await port.delete("tvp-red-a", ports["red-a"]!);
    for (const host of [A, B]) {
      await net.delete("tvd-red", nets[host]);
      expect((await lab.sh(host, "ip link show dev tvh-red || ip link show dev tvd-red")).exitCode).not.toBe(
        0,
      );
      const records = await (await dom0Of(host)).owners([{ type: "bridge", name: "tvh-red" }]);
      expect(records.get("bridge:tvh-red")?.owner).toBeUndefined();
    }
  });
});
