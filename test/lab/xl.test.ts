/**
 * The lab's xl is strict where real xl is: each rule is shown accepting the good case and
 * rejecting the bad one with real xl's message and exit code (../shared/xl-reference.md).
 */
import { randomUUID } from "node:crypto";
import { cfg, startTestLab, type TestLab } from "../support/lab";

jest.setTimeout(120_000);

let lab: TestLab;
const A = "dom0-a";

beforeAll(async () => {
  lab = await startTestLab({ hosts: 1, memoryMiB: 4096 });
  const r = await lab.sh(
    A,
    "mkdir -p /var/lib/xen/vtpm && dd if=/dev/zero of=/var/lib/xen/vtpm/mgr.img bs=16M count=1 conv=excl status=none",
  );
  expect(r.exitCode).toBe(0);
  await lab.writeFile(A, "/etc/xen/vtpmmgr.cfg", cfg.manager());
  const created = await lab.xl(A, "create", "/etc/xen/vtpmmgr.cfg");
  expect(created).toMatchObject({ exitCode: 0, stderr: "Parsing config from /etc/xen/vtpmmgr.cfg\n" });
});

afterAll(async () => lab?.stop());

async function vtpmImage(name: string): Promise<void> {
  const r = await lab.sh(A, 'dd if=/dev/zero of="/var/lib/xen/vtpm/$1.img" bs=8M count=1 status=none', name);
  expect(r.exitCode).toBe(0);
}

/** Writes a config and runs `xl create` on it. */
async function create(name: string, text: string) {
  await lab.writeFile(A, `/etc/xen/${name}.cfg`, text);
  return lab.xl(A, "create", `/etc/xen/${name}.cfg`);
}

describe("xl create parses with Xen's libxlutil", () => {
  it("rejects a syntax error with the parser's own message", async () => {
    const r = await create("syntax", 'name="x" memory=16\n');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toBe(
      "Parsing config from /etc/xen/syntax.cfg\n" +
        "/etc/xen/syntax.cfg:1: config parsing error near `memory': syntax error, unexpected IDENT, expecting $end\n" +
        "Failed to parse config: Invalid argument\n",
    );
  });

  it("reports a missing config file as real xl does (exit 3, no Parsing line)", async () => {
    const r = await lab.xl(A, "create", "/etc/xen/nope.cfg");
    expect(r).toMatchObject({
      exitCode: 3,
      stderr: "Failed to read config file: /etc/xen/nope.cfg: No such file or directory\n",
    });
  });

  it("requires a name", async () => {
    const r = await create("noname", "memory=16\n");
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("Domain name must be specified.");
  });

  it("parses disk specs with xlu_disk_parse: modern syntax accepted, unknown keys rejected", async () => {
    const good = await create("diskok", cfg.guest("diskok"));
    expect(good.exitCode).toBe(0);
    const list = JSON.parse((await lab.xl(A, "list", "-l", "diskok")).stdout);
    expect(list[0].config.disks[0]).toMatchObject({
      pdev_path: "/var/lib/xen/images/debian-base.raw",
      vdev: "xvda",
      format: "raw",
      readwrite: 1,
    });
    await lab.xl(A, "destroy", "diskok");
    const bad = await create("diskbad", cfg.guest("diskbad").replace("access=rw", "access=rw, colour=blue"));
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toContain("config parsing error in disk specification: unknown parameter");
  });
});

describe("vtpm specs", () => {
  it.each([
    ["an unknown key", "backend=vtpmmgr,colour=1", "Unknown string `colour' in vtpm spec"],
    ["a malformed UUID", "backend=vtpmmgr,uuid=not-a-uuid", "Failed to parse vtpm UUID: not-a-uuid"],
    ["no backend", `uuid=${randomUUID()}`, "vtpm spec missing required backend field!"],
  ])("rejects %s with xl's message", async (_, spec, message) => {
    await vtpmImage("specbad");
    const text = cfg.vtpm("specbad", randomUUID()).replace(/vtpm=\[.*\]/, `vtpm=["${spec}"]`);
    const r = await create("specbad", text);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.split("\n")).toContain(message);
  });

  it("accepts backend and uuid, and shows them in xl list -l and xl vtpm-list", async () => {
    const uuid = randomUUID();
    await vtpmImage("okvtpm");
    expect((await create("okvtpm", cfg.vtpm("okvtpm", uuid))).exitCode).toBe(0);
    const long = JSON.parse((await lab.xl(A, "list", "-l", "okvtpm")).stdout);
    expect(long[0].config.vtpms).toEqual([{ backend_domname: "vtpmmgr", devid: 0, uuid }]);
    const mgrId = (await lab.xl(A, "domid", "vtpmmgr")).stdout.trim();
    const list = (await lab.xl(A, "vtpm-list", "okvtpm")).stdout.split("\n");
    expect(list[0]).toMatch(/^Idx BE Uuid\s+handle state evt-ch ring-ref BE-path/);
    expect(list[1]).toMatch(
      new RegExp(`^0\\s+${mgrId}\\s+${uuid}\\s+0\\s+4\\s+-1\\s+-1 /local/domain/${mgrId}/backend/vtpm/`),
    );
    await lab.xl(A, "destroy", "okvtpm");
  });
});

describe("domain rules", () => {
  it("keeps names unique", async () => {
    const r = await create("dup", cfg.manager("vtpmmgr", "/var/lib/xen/vtpm/mgr.img"));
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/libxl__domain_rename: Domain \d+:Domain with name "vtpmmgr" already exists\./);
    expect(r.stderr).toMatch(/cannot make domain: -6/);
  });

  it("accounts memory against the host's total", async () => {
    const free = Number((await lab.xl(A, "info", "free_memory")).stdout.trim());
    const tooBig = await create("huge", cfg.guest("huge", { memory: free + 1 }));
    expect(tooBig.exitCode).toBe(3);
    expect(tooBig.stderr).toContain("can't allocate low memory for domain: Out of memory");
    const fits = await create("fits", cfg.guest("fits", { memory: 512 }));
    expect(fits.exitCode).toBe(0);
    expect(Number((await lab.xl(A, "info", "free_memory")).stdout.trim())).toBe(free - 512);
    await lab.xl(A, "destroy", "fits");
    expect(Number((await lab.xl(A, "info", "free_memory")).stdout.trim())).toBe(free);
  });

  it("needs the kernel to exist", async () => {
    const r = await create(
      "nokernel",
      cfg.guest("nokernel").replace("/usr/lib/xen/boot/vmlinuz", "/root/missing-kernel"),
    );
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain("failed to open file '/root/missing-kernel': No such file or directory");
  });

  it("needs a vtpm-stubdom's backend to be a running vtpmmgr", async () => {
    await vtpmImage("orphan");
    const r = await create("orphan", cfg.vtpm("orphan", randomUUID(), { backend: "nosuchmgr" }));
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain("domcreate_attach_devices: Domain");
    expect(r.stderr).toContain("unable to add vtpm devices");
    expect((await lab.xl(A, "domid", "orphan")).exitCode).toBe(1);
  });

  it("needs a guest's vtpm backend to be a running vtpm-stubdom (start order)", async () => {
    const before = await create("early", cfg.guest("early", { vtpm: "early-vtpm" }));
    expect(before.exitCode).toBe(3);
    expect(before.stderr).toContain("unable to add vtpm devices");
    await vtpmImage("early-vtpm");
    expect((await create("early-vtpm", cfg.vtpm("early-vtpm", randomUUID()))).exitCode).toBe(0);
    expect((await create("early", cfg.guest("early", { vtpm: "early-vtpm" }))).exitCode).toBe(0);
    const console = await lab.sh(A, "cat /var/log/xen/console/guest-early-vtpm.log");
    expect(console.stdout).toContain("Info: Waiting for frontend domain to connect..");
    expect(console.stdout).toMatch(/Info: VTPM attached to Frontend \d+\/0/);
    await lab.xl(A, "destroy", "early");
    await lab.xl(A, "destroy", "early-vtpm");
  });

  it("prints 'Waiting for commands' on the manager's console once ready", async () => {
    await lab.waitForConsole(A, "vtpmmgr", "INFO[VTPM]: Waiting for commands from vTPM's:");
  });

  it("lets the manager ignore shutdown: it must be destroyed", async () => {
    const r = await lab.xl(A, "shutdown", "vtpmmgr");
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(
      /^Shutting down domain \d+\nguest didn't acknowledge control request: -9\nshutdown failed \(rc=-9\)\n$/,
    );
    expect((await lab.xl(A, "domid", "vtpmmgr")).exitCode).toBe(0);
  });

  it("destroys a manager under its vTPMs as xl would, but not cleanly: the next start warns", async () => {
    await lab.sh(A, "dd if=/dev/zero of=/var/lib/xen/vtpm/mgr2.img bs=16M count=1 status=none");
    expect((await create("mgr2", cfg.manager("mgr2", "/var/lib/xen/vtpm/mgr2.img"))).exitCode).toBe(0);
    await lab.waitForConsole(A, "mgr2", "Waiting for commands");
    await vtpmImage("user2");
    expect((await create("user2", cfg.vtpm("user2", randomUUID(), { backend: "mgr2" }))).exitCode).toBe(0);
    const destroyed = await lab.xl(A, "destroy", "mgr2");
    expect(destroyed).toMatchObject({ exitCode: 0, stderr: "" });
    expect((await lab.sh(A, "cat /var/log/xen/console/guest-mgr2.log")).stdout).toContain(
      "destroyed while 1 vTPM(s) were connected; storage may be inconsistent",
    );
    expect((await lab.xl(A, "vtpm-list", "user2")).stdout).toMatch(/\s6\s+-1\s+-1 /);
    await lab.xl(A, "destroy", "user2");
    expect((await create("mgr2", cfg.manager("mgr2", "/var/lib/xen/vtpm/mgr2.img"))).exitCode).toBe(0);
    expect((await lab.sh(A, "cat /var/log/xen/console/guest-mgr2.log")).stdout).toContain(
      "manager storage was not shut down cleanly",
    );
    await lab.xl(A, "destroy", "mgr2");
  });
});

describe("other subcommands", () => {
  it("domid, domname and destroy report unknown domains like xl", async () => {
    expect(await lab.xl(A, "domid", "nosuch")).toMatchObject({
      exitCode: 1,
      stderr: "Can't get domid of domain name 'nosuch', maybe this domain does not exist.\n",
    });
    expect(await lab.xl(A, "domname", "999")).toMatchObject({ exitCode: 1 });
    expect(await lab.xl(A, "destroy", "nosuch")).toMatchObject({
      exitCode: 1,
      stderr: "nosuch is an invalid domain identifier (rc=-6)\n",
    });
    expect(await lab.xl(A, "destroy", "999")).toMatchObject({
      exitCode: 1,
      stderr: "destroy failed (rc=-21)\n",
    });
    const id = (await lab.xl(A, "domid", "vtpmmgr")).stdout.trim();
    expect((await lab.xl(A, "domname", id)).stdout).toBe("vtpmmgr\n");
  });

  it("xl list prints xl's table", async () => {
    const lines = (await lab.xl(A, "list")).stdout.split("\n");
    expect(lines[0]).toBe("Name                                        ID   Mem VCPUs\tState\tTime(s)");
    expect(lines[1]).toMatch(/^Domain-0\s+0\s+2048\s+2\s+r-----\s+\d+\.\d$/);
    expect(lines.some((l) => /^vtpmmgr\s+\d+\s+16\s+1\s+-b----\s+\d+\.\d$/.test(l))).toBe(true);
  });

  it("xl info reports Xen 4.17 and memory", async () => {
    const info = (await lab.xl(A, "info")).stdout;
    expect(info).toMatch(/^xen_version\s+: 4\.17\.7$/m);
    expect(info).toMatch(/^total_memory\s+: 4096$/m);
    expect(info).toMatch(/^free_memory\s+: \d+$/m);
  });

  it("vtpm-attach and vtpm-detach check their arguments like xl", async () => {
    await vtpmImage("att");
    expect((await create("att", cfg.vtpm("att", randomUUID()))).exitCode).toBe(0);
    expect((await create("attg", cfg.guest("attg"))).exitCode).toBe(0);
    expect(await lab.xl(A, "vtpm-attach", "attg", "uuid=nope", "backend=att")).toMatchObject({
      exitCode: 1,
      stderr: "Invalid uuid specified (nope)\n",
    });
    expect(await lab.xl(A, "vtpm-attach", "attg", "colour=1")).toMatchObject({
      exitCode: 1,
      stderr: "unrecognized argument `colour=1'\n",
    });
    expect(await lab.xl(A, "vtpm-attach", "attg", "backend=nosuch")).toMatchObject({
      exitCode: 1,
      stderr: "libxl_device_vtpm_add failed.\n",
    });
    expect((await lab.xl(A, "vtpm-attach", "attg", "backend=att")).exitCode).toBe(0);
    expect((await lab.xl(A, "vtpm-list", "attg")).stdout.split("\n")).toHaveLength(3);
    expect(await lab.xl(A, "vtpm-detach", "attg", "7")).toMatchObject({
      exitCode: 1,
      stderr: "Unknown device 7.\n",
    });
    expect((await lab.xl(A, "vtpm-detach", "attg", "0")).exitCode).toBe(0);
    expect((await lab.xl(A, "vtpm-list", "attg")).stdout.split("\n")).toHaveLength(2);
    await lab.xl(A, "destroy", "attg");
    await lab.xl(A, "destroy", "att");
  });

  it("serializes parallel xl calls from many SSH channels", async () => {
    const names = Array.from({ length: 16 }, (_, i) => `par${i}`);
    for (const n of names) await lab.writeFile(A, `/etc/xen/${n}.cfg`, cfg.guest(n, { memory: 32 }));
    const results = await Promise.all(names.map((n) => lab.xl(A, "create", `/etc/xen/${n}.cfg`)));
    expect(results.map((r) => r.exitCode)).toEqual(names.map(() => 0));
    const long = JSON.parse((await lab.xl(A, "list", "-l")).stdout) as Array<{
      domid: number;
      config: { c_info: { name: string } };
    }>;
    const ours = long.filter((d) => d.config.c_info.name.startsWith("par"));
    expect(ours).toHaveLength(16);
    expect(new Set(ours.map((d) => d.domid)).size).toBe(16);
    await Promise.all(names.map((n) => lab.xl(A, "destroy", n)));
    expect((await lab.xl(A, "list")).stdout).not.toContain("par");
  });
});

describe("xenstore", () => {
  it("holds libxl's entries and guests' reporting paths", async () => {
    expect((await create("xs", cfg.guest("xs"))).exitCode).toBe(0);
    const id = (await lab.xl(A, "domid", "xs")).stdout.trim();
    expect((await lab.sh(A, 'xenstore-read "/local/domain/$1/name"', id)).stdout).toBe("xs\n");
    const w = await lab.sh(A, 'xenstore-write "/local/domain/$1/data/attest" "pcr4=ok"', id);
    expect(w.exitCode).toBe(0);
    expect((await lab.sh(A, 'xenstore-read "/local/domain/$1/data/attest"', id)).stdout).toBe("pcr4=ok\n");
    expect((await lab.sh(A, 'xenstore-ls "/local/domain/$1"', id)).stdout).toContain('attest = "pcr4=ok"');
    expect((await lab.sh(A, 'xenstore-rm "/local/domain/$1/data/attest"', id)).exitCode).toBe(0);
    const gone = await lab.sh(A, 'xenstore-read "/local/domain/$1/data/attest"', id);
    expect(gone.exitCode).toBe(1);
    await lab.xl(A, "destroy", "xs");
    expect((await lab.sh(A, 'xenstore-read "/local/domain/$1/name"', id)).exitCode).toBe(1);
  });
});
