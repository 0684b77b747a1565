/**
 * TVD network isolation, proven with traffic: three lab hosts on the underlay, TVD "red" (VNI
 * 100) on all three and "blue" (VNI 200) on two, both in the same subnet, so that only the
 * isolation of bridges and VNIs (not routing) keeps them apart. Guests are xl configs written
 * by hand; each guest's vif is a veth into a network namespace of its own.
 */
import { readFileSync } from "node:fs";
import { alive, inHost } from "../../lab/host";
import { labStatus, labUp } from "../../lab/lab";
import { tvdNetworkLifecycle } from "../../provider/resources/tvdNetwork/provider";
import { cfg, startTestLab, type TestLab } from "../support/lab";

jest.setTimeout(180_000);

let lab: TestLab;
const [A, B, C] = ["dom0-a", "dom0-b", "dom0-c"];
type Props = Record<string, unknown>;
const connection: Record<string, Props> = {};
const ip = (h: string) => lab.host(h).underlayIp;

beforeAll(async () => {
  lab = await startTestLab({ hosts: 3, diskMiB: 256 });
  for (const name of [A, B, C]) {
    const h = lab.host(name);
    connection[name] = {
      host: h.host,
      port: h.port,
      privateKey: readFileSync(h.privateKeyPath, "utf8"),
      hostKeyFingerprint: h.hostKeyFingerprint,
    };
  }
});

afterAll(async () => lab?.stop());

/** A TVD's network on one host: its peers are the TVD's other hosts. */
const netInputs = (tvd: string, vni: number, host: string, hosts: string[]): Props => ({
  connection: connection[host],
  bridge: `tvd-${tvd}`,
  vni,
  localIp: ip(host),
  peers: hosts.filter((h) => h !== host).map(ip),
});

/** A guest domain with one vif, as a TVD member's xl config would have it. */
async function guest(host: string, name: string, vif: string): Promise<void> {
  await lab.writeFile(host, `/etc/xen/${name}.cfg`, cfg.guest(name, { memory: 32 }) + `vif=["${vif}"]\n`);
  const r = await lab.xl(host, "create", `/etc/xen/${name}.cfg`);
  if (r.exitCode !== 0) throw new Error(`xl create ${name} on ${host}: ${r.stderr}`);
}

/** The guest's network namespace holder, from where the emulator records it on the host. */
async function netnsPid(host: string, domain: string): Promise<string> {
  const r = await inHost(lab.host(host), ["cat", `/var/lib/tvd-lab/netns/${domain}.pid`]);
  if (r.code !== 0) throw new Error(`no netns for ${domain} on ${host}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Runs argv inside a guest's network namespace, on its host. */
async function inGuest(host: string, domain: string, argv: string[]) {
  return inHost(lab.host(host), ["nsenter", "-t", await netnsPid(host, domain), "-n", ...argv]);
}

/** One ping from inside a guest; true when it was answered. */
async function pings(host: string, domain: string, to: string): Promise<boolean> {
  return (await inGuest(host, domain, ["ping", "-c1", "-W1", to])).code === 0;
}

describe("the lab underlay", () => {
  it("links the hosts' eth0 on 10.99.0.0/24 and nothing else", async () => {
    expect(lab.hosts.map((h) => h.underlayIp)).toEqual(["10.99.0.1", "10.99.0.2", "10.99.0.3"]);
    const inventory = JSON.parse(readFileSync(`${lab.stateDir}/inventory.json`, "utf8"));
    expect(inventory.hosts.map((h: Props) => h.underlayIp)).toEqual(["10.99.0.1", "10.99.0.2", "10.99.0.3"]);
    expect(labStatus(lab.stateDir).map((h) => h.underlayIp)).toEqual(["10.99.0.1", "10.99.0.2", "10.99.0.3"]);
    expect((await inHost(lab.host(A), ["ping", "-c1", "-W1", ip(C)])).code).toBe(0);
    expect((await inHost(lab.host(C), ["ping", "-c1", "-W1", ip(B)])).code).toBe(0);
    // A restarted underlay takes every host's eth0 with it; the next up links them again.
    const underlayPid = Number(readFileSync(`${lab.stateDir}/underlay/holder.pid`, "utf8"));
    process.kill(underlayPid, "SIGKILL");
    for (let i = 0; i < 50 && alive(underlayPid); i++) await new Promise((r) => setTimeout(r, 50));
    expect((await inHost(lab.host(A), ["ip", "link", "show", "dev", "eth0"])).code).not.toBe(0);
    await labUp(lab.stateDir, { hosts: 3 });
    expect((await inHost(lab.host(A), ["ping", "-c1", "-W1", ip(C)])).code).toBe(0);
    const routes = await inHost(lab.host(A), ["ip", "-4", "route", "show"]);
    expect(routes.stdout.trim()).toBe("10.99.0.0/24 dev eth0 proto kernel scope link src 10.99.0.1");
  });
});

describe("xl create with vifs", () => {
  it("fails like vif-bridge when the bridge does not exist, and creates nothing", async () => {
    await lab.writeFile(
      A,
      "/etc/xen/nobr.cfg",
      cfg.guest("nobr", { memory: 32 }) + 'vif=["bridge=tvd-none"]\n',
    );
    const r = await lab.xl(A, "create", "/etc/xen/nobr.cfg");
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain(
      "libxl: error: libxl_exec.c:117:libxl_report_child_exitstatus: /etc/xen/scripts/vif-bridge online [-1] exited with error status 1",
    );
    expect(r.stderr).toContain(
      "libxl: error: libxl_device.c:1299:device_hotplug_child_death_cb: script: Could not find bridge device tvd-none",
    );
    expect((await lab.xl(A, "list")).stdout).not.toMatch(/^nobr\s/m);
    expect((await lab.sh(A, "ip -o link show | grep -c vif || true")).stdout.trim()).toBe("0");
    expect((await lab.sh(A, "test -e /var/lib/tvd-lab/netns/nobr.pid")).exitCode).toBe(1);
  });

  it("plugs vif<domid>.<devid> into the bridge and gives the guest eth0 its MAC and address", async () => {
    await lab.sh(A, "ip link add plugbr type bridge && ip link set plugbr up");
    await guest(A, "plug", "bridge=plugbr,mac=00:16:3e:00:00:aa,ip=10.70.0.5");
    const domid = (await lab.xl(A, "domid", "plug")).stdout.trim();
    const vif = await lab.sh(A, 'ip -o link show dev "$1"', `vif${domid}.0`);
    expect(vif.stdout).toMatch(/master plugbr state UP/);
    const pid = await netnsPid(A, "plug");
    expect(labStatus(lab.stateDir)[0].netns).toEqual([
      { domain: "plug", pid: Number(pid), vifs: [`vif${domid}.0`] },
    ]);
    const eth = await inGuest(A, "plug", ["ip", "-o", "addr", "show", "dev", "eth0"]);
    expect(eth.stdout).toContain("inet 10.70.0.5/24");
    const link = await inGuest(A, "plug", ["ip", "-o", "link", "show", "dev", "eth0"]);
    expect(link.stdout).toMatch(/state UP .*link\/ether 00:16:3e:00:00:aa /);
    expect((await lab.xl(A, "destroy", "plug")).exitCode).toBe(0);
    expect((await lab.sh(A, 'ip link show dev "$1"', `vif${domid}.0`)).exitCode).not.toBe(0);
    expect((await lab.sh(A, "test -e /var/lib/tvd-lab/netns/plug.pid")).exitCode).toBe(1);
    // The namespace's holder is gone, and with it the guest's side.
    expect(alive(Number(pid))).toBe(false);
    await lab.sh(A, "ip link del plugbr");
  });
});

describe("TvdNetwork", () => {
  const red = {
    A: () => netInputs("red", 100, A, [A, B, C]),
    C: () => netInputs("red", 100, C, [A, B, C]),
  };
  const nets: Array<{ host: string; inputs: Props; outs: Props }> = [];

  it("builds red on a, b, c and blue on a, b; their guests reach only their own TVD", async () => {
    for (const [tvd, vni, hosts] of [
      ["red", 100, [A, B, C]],
      ["blue", 200, [A, B]],
    ] as const) {
      for (const host of hosts) {
        const inputs = netInputs(tvd, vni, host, [...hosts]);
        expect((await tvdNetworkLifecycle.check({}, inputs)).failures).toBeUndefined();
        const { id, outs } = await tvdNetworkLifecycle.create(inputs);
        expect(id).toBe(`tvd-${tvd}`);
        expect(outs).toMatchObject({
          bridgePresent: true,
          vxlanPresent: true,
          vxlanOnBridge: true,
          mtu: 1450,
        });
        nets.push({ host, inputs, outs });
      }
    }
    // Create again is a no-op (idempotent).
    await tvdNetworkLifecycle.create(red.A());
    expect((await lab.sh(A, "bridge fdb show dev vx100 | grep -c '^00:00:00:00:00:00'")).stdout.trim()).toBe(
      "2",
    );

    // Same subnet for both TVDs: only isolation keeps them apart.
    await guest(A, "red-a", "bridge=tvd-red,ip=10.50.0.11/24");
    await guest(C, "red-c", "bridge=tvd-red,ip=10.50.0.13/24");
    await guest(A, "blue-a", "bridge=tvd-blue,ip=10.50.0.21/24");
    await guest(B, "blue-b", "bridge=tvd-blue,ip=10.50.0.22/24");

    expect(await pings(A, "red-a", "10.50.0.13")).toBe(true);
    expect(await pings(C, "red-c", "10.50.0.11")).toBe(true);
    expect(await pings(A, "blue-a", "10.50.0.22")).toBe(true);
    expect(await pings(A, "red-a", "10.50.0.22")).toBe(false);
    expect(await pings(A, "red-a", "10.50.0.21")).toBe(false);
    expect(await pings(B, "blue-b", "10.50.0.13")).toBe(false);
  });

  it("reports a peer removed out of band on peers, and update puts it back", async () => {
    await lab.sh(C, 'bridge fdb del 00:00:00:00:00:00 dev vx100 dst "$1"', ip(A));
    expect(await pings(C, "red-c", "10.50.0.11")).toBe(false);
    const state = nets.find((n) => n.host === C && n.inputs.bridge === "tvd-red")!.outs;
    const read = await tvdNetworkLifecycle.read("tvd-red", state);
    expect(read.inputs?.peers).toEqual([ip(B)]);
    expect(read.props?.peers).toEqual([ip(B)]);
    const diff = await tvdNetworkLifecycle.diff("tvd-red", read.props!, red.C());
    expect(diff).toMatchObject({ changes: true, replaces: [] });
    const { outs } = await tvdNetworkLifecycle.update("tvd-red", read.props!, red.C());
    expect(outs.peers).toEqual([ip(A), ip(B)]);
    expect(await pings(C, "red-c", "10.50.0.11")).toBe(true);
    const again = await tvdNetworkLifecycle.read("tvd-red", outs);
    expect((await tvdNetworkLifecycle.diff("tvd-red", again.props!, red.C())).changes).toBe(false);
  });

  it("classifies a VNI change as a replace", async () => {
    const diff = await tvdNetworkLifecycle.diff("tvd-red", nets[0].outs, { ...red.A(), vni: 101 });
    expect(diff).toMatchObject({ changes: true, replaces: ["vni"], deleteBeforeReplace: true });
  });

  it("refuses to delete while a guest's vif is on the bridge, naming it; deletes once guests are gone", async () => {
    const domid = (await lab.xl(A, "domid", "red-a")).stdout.trim();
    await expect(tvdNetworkLifecycle.delete("tvd-red", nets[0].outs)).rejects.toThrow(
      new RegExp(`vif${domid}\\.0 \\(domain red-a\\).*guests must go first`),
    );
    expect((await lab.sh(A, "ip link show dev tvd-red && ip link show dev vx100")).exitCode).toBe(0);

    for (const [host, name] of [
      [A, "red-a"],
      [C, "red-c"],
      [A, "blue-a"],
      [B, "blue-b"],
    ]) {
      expect((await lab.xl(host, "destroy", name)).exitCode).toBe(0);
    }
    for (const n of nets) {
      await tvdNetworkLifecycle.delete(n.inputs.bridge as string, n.outs);
      // Idempotent.
      await tvdNetworkLifecycle.delete(n.inputs.bridge as string, n.outs);
      const vx = `vx${n.inputs.vni as number}`;
      const left = await lab.sh(
        n.host,
        'ip link show dev "$1" || ip link show dev "$2"',
        n.inputs.bridge as string,
        vx,
      );
      expect(left.exitCode).not.toBe(0);
      expect(await tvdNetworkLifecycle.read(n.inputs.bridge as string, n.outs)).toEqual({});
    }
  });
});
