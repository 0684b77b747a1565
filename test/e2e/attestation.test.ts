/**
 * Issue 16 through the real Pulumi CLI: a TVD with measured boot, two members on TPM 1.2 vTPMs
 * (dom0-a, as Xen's vtpm-stubdom) and one on a TPM 2.0 vTPM (dom0-b). Each boots through the
 * lab's pv-grub from the template's own ext4 disk (menu.lst, a gzip kernel, an initrd), which
 * extends its vTPM's PCR 4 and 5 before its agent starts; the program computes the baseline from
 * the kernel and initrd files it declares. Shown: a member declared with a kernel whose bytes
 * differ from what its disk boots is not admitted, the error naming PCR 4 and both values, and no
 * member reaches another (ping, both ways); fixing the declaration admits every member in the next
 * `up` and they all reach each other; a changed kernel file shows in a plain preview as a changed
 * baseline; a member removed from the TVD has its certificate rejected by the CRL the others hold;
 * a PCR 5 extended out of band through the vTPM's swtpm socket is drift in `preview --refresh`
 * naming PCR 5, and `up` refuses that member, cuts it off (ping fails both ways) and puts its
 * certificates on hold in the CRL the others hold. The expected
 * PCR values are computed here with node:crypto, not with the library.
 */
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { gzipSync } from "node:zlib";
import { labStatus } from "../../lab/lab";
import { startTestLab, type TestLab } from "../support/lab";
import { disposeThen, expectExit, TestStack, type OperationResult } from "./pulumi";

jest.setTimeout(20 * 60_000);

const fixture = path.join(__dirname, "fixtures", "attestation");
const HOSTS = ["dom0-a", "dom0-b"];
/** att-01 and att-03 land on dom0-a (TPM 1.2), att-02 on dom0-b (TPM 2.0): members are spread in turn. */
const MEMBERS = { "att-01": "1.2", "att-02": "2.0", "att-03": "1.2" } as const;
type Member = keyof typeof MEMBERS;
const HOST_OF: Record<Member, string> = { "att-01": "dom0-a", "att-02": "dom0-b", "att-03": "dom0-a" };
const BASE = "/var/lib/xen/images/measured";

const kernel = Buffer.concat([Buffer.from("\x7fELF attested kernel "), randomBytes(120_000)]);
const initrd = randomBytes(40_000);
const cmdline = "root=/dev/xvda ro console=hvc0";

const sha1 = (b: Buffer) => createHash("sha1").update(b).digest();
/** SHA-1 PCR after extending each blob's SHA-1 in turn from zero, as pv-grub does. */
const chain = (...measured: Buffer[]) =>
  measured.reduce((pcr, m) => sha1(Buffer.concat([pcr, sha1(m)])), Buffer.alloc(20));
const PCR4 = chain(kernel).toString("hex");
const PCR5 = chain(Buffer.from(cmdline), initrd).toString("hex");

interface MemberOut {
  host: string;
  tpm: { version: string };
  attestation: { attested: boolean; pcrDigest: string };
}

let lab: TestLab;
let stack: TestStack;
let dir: string;
const files = { kernel: "", initrd: "", other: "" };

beforeAll(async () => {
  lab = await startTestLab({ hosts: HOSTS.length });
  // The lab's vTPMs are one TPM version per host (host.json, read by each xl call): dom0-b's are 2.0.
  await lab.check(HOSTS[1], 'sed -i \'s/"tpm2": false/"tpm2": true/\' /var/lib/tvd-lab/host.json');
  // The template: a real ext4 made by mke2fs -d from the boot files, on each host.
  const gz = gzipSync(kernel);
  const menu = [
    "default 0",
    "timeout 1",
    "title Debian GNU/Linux (measured)",
    "root (hd0)",
    `kernel /boot/vmlinuz ${cmdline}`,
    "initrd /boot/initrd.img",
    "",
  ].join("\n");
  for (const host of HOSTS) {
    await lab.writeFile(host, `${BASE}/root/boot/grub/menu.lst`, menu);
    await lab.writeFile(host, `${BASE}/root/boot/vmlinuz`, gz);
    await lab.writeFile(host, `${BASE}/root/boot/initrd.img`, initrd);
    await lab.check(host, 'cd "$1" && mkfs.ext4 -q -F -d root base.raw 16M', BASE);
  }
  // What the program declares: the same files, where Pulumi runs; and a kernel one byte off.
  dir = mkdtempSync(path.join(os.tmpdir(), "tvd-attestation-"));
  files.kernel = path.join(dir, "vmlinuz");
  files.initrd = path.join(dir, "initrd.img");
  files.other = path.join(dir, "vmlinuz-other");
  writeFileSync(files.kernel, gz);
  writeFileSync(files.initrd, initrd);
  const other = Buffer.from(kernel);
  other[other.length - 1] ^= 1;
  writeFileSync(files.other, gzipSync(other));
  stack = await TestStack.create({
    programDir: fixture,
    config: {
      inventory: { value: path.join(lab.stateDir, "inventory.json") },
      baseImage: { value: `${BASE}/base.raw` },
      kernel: { value: files.other },
      initrd: { value: files.initrd },
      cmdline: { value: cmdline },
    },
  });
});

afterAll(() =>
  disposeThen(stack, async () => {
    rmSync(dir, { recursive: true, force: true });
    await lab?.stop();
  }),
);

const text = (r: OperationResult) => r.diagnostics.join("\n");

/** Each member's address, from the Guests in the stack's state (known even after a failed up). */
async function addresses(): Promise<Record<string, string>> {
  const { deployment } = await stack.exportState();
  return Object.fromEntries(
    (deployment.resources ?? [])
      .filter((r) => String(r.type).endsWith(":Guest"))
      .map((r) => {
        const inputs = r.inputs as { name: string; vifs: Array<{ ip: string }> };
        return [inputs.name, inputs.vifs[0].ip.split("/")[0]];
      }),
  );
}

/** Which of `among` reach which, both ways, as "a>b": one ping from inside each guest. */
async function reachable(among: readonly Member[]): Promise<string[]> {
  const ip = await addresses();
  const out: string[] = [];
  for (const from of among)
    for (const to of among)
      if (from !== to && (await lab.guestPings(HOST_OF[from], from, ip[to]))) out.push(`${from}>${to}`);
  return out;
}

/** Every ordered pair of `among`, as reachable() writes them. */
const allPairs = (among: readonly Member[]) =>
  among.flatMap((from) => among.filter((to) => to !== from).map((to) => `${from}>${to}`));

/** The bridge a member's port is on, as its host shows it. */
const bridgeOf = async (m: Member) =>
  (
    await lab.check(
      HOST_OF[m],
      'ip -o link show dev "$1" | grep -o " master [^ ]*" | cut -d" " -f3',
      `tvp-${m}`,
    )
  ).trim();
/** The engine's step events for one resource, as JSON text. */
const stepsOf = (r: OperationResult, name: string) =>
  r.events
    .map((e) => e.resourcePreEvent?.metadata ?? e.resOutputsEvent?.metadata)
    .filter((m) => m?.urn.endsWith(`::${name}`));

it("a member declared with a kernel whose bytes differ from what its disk boots is not admitted: the error names PCR 4", async () => {
  const r = await stack.up();
  expect(r.code).not.toBe(0);
  const other = chain(Buffer.from(spawnSync("gunzip", ["-c", files.other]).stdout)).toString("hex");
  // The engine starts no new step after the first failure: the other member may not be asked.
  const refused = Object.keys(MEMBERS).filter((m) => text(r).includes(`member ${m} is not admitted`));
  expect(refused.length).toBeGreaterThan(0);
  for (const member of refused) {
    expect(text(r)).toContain(
      `member ${member} is not admitted to its TVD: PCR 4 is ${PCR4}, the baseline says ${other} ` +
        `(what the member booted differs from the kernel file ${files.other} declared)`,
    );
  }
  expect(text(r)).not.toMatch(/PCR 5 is/);
  // Each refused member's port is held, and no member reaches another, either way.
  for (const member of refused) {
    expect(text(r)).toContain(`its port tvp-${member} is held on tvh-att on `);
    expect(await bridgeOf(member as Member)).toBe("tvh-att");
  }
  const running = Object.keys(await addresses()) as Member[];
  expect(running.length).toBeGreaterThanOrEqual(2);
  expect(await reachable(running)).toEqual([]);
});

it("fixing the declaration admits every member, TPM 1.2 and 2.0, with the PCRs pv-grub measured", async () => {
  await stack.setConfig("kernel", files.kernel);
  expectExit(await stack.up());
  const o = await stack.outputs();
  const members = o.members as Record<string, MemberOut>;
  const digest = createHash("sha256")
    .update(Buffer.from(PCR4 + PCR5, "hex"))
    .digest("hex");
  expect(o.baseline).toMatchObject({ bank: "sha1", pcrs: { "4": PCR4, "5": PCR5 } });
  for (const [member, version] of Object.entries(MEMBERS)) {
    expect(members[member].tpm.version).toBe(version);
    expect(members[member].attestation).toEqual({ attested: true, pcrDigest: digest });
    expect((o.proved as Record<string, unknown>)[member]).toEqual({ "4": PCR4, "5": PCR5 });
  }
  const summary = String(o.summary);
  expect(summary.split("\n")[1]).toMatch(/attested\s+PCR digest$/);
  expect(summary).toContain(`yes       sha256:${digest.slice(0, 16)}`);
  expect(String(o.diagram).match(/:::attested/g)).toHaveLength(3 + 1); // three members and the legend
  expectExit(await stack.preview({ refresh: true, expectNoChanges: true }));
  // Admitted: every port on the TVD bridge, and every member reaches every other, across hosts.
  const all = Object.keys(MEMBERS) as Member[];
  for (const member of all) expect(await bridgeOf(member)).toBe("tvd-att");
  expect(await reachable(all)).toEqual(allPairs(all));
});

it("a plain preview shows another kernel file as a changed baseline on every member", async () => {
  await stack.setConfig("kernel", files.other);
  const p = await stack.preview();
  expectExit(p);
  for (const member of Object.keys(MEMBERS)) {
    const step = p.steps.find((s) => s.name === `${member}-attestation`);
    expect(step?.op).toBe("update");
    expect(step?.changedInputs).toEqual(["baseline"]);
  }
  await stack.setConfig("kernel", files.kernel);
});

/** The CA and every member's X.509 certificate, from the outputs of the up that admitted all. */
let issued: { caCertPem: string; certs: Record<Member, string> };

/**
 * `openssl verify -crl_check` of `member`'s certificate with the TVD's CA and the CRL `holder`
 * holds in its own xenstore data path (what it checks its peers with): the verdict and its text.
 */
async function checkedBy(holder: Member, member: Member): Promise<{ ok: boolean; out: string }> {
  const held = await lab.check(
    HOST_OF[holder],
    'xenstore-read "/local/domain/$(xl domid "$1")/data/tvd/crl"',
    holder,
  );
  const files = {
    ca: path.join(dir, "ca.pem"),
    crl: path.join(dir, "crl.pem"),
    cert: path.join(dir, "cert.pem"),
  };
  writeFileSync(files.ca, issued.caCertPem);
  writeFileSync(files.crl, held);
  writeFileSync(files.cert, issued.certs[member]);
  const r = spawnSync(
    "openssl",
    ["verify", "-crl_check", "-CAfile", files.ca, "-CRLfile", files.crl, files.cert],
    {
      encoding: "utf8",
    },
  );
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

it("a member removed from the TVD has its certificate rejected by the CRL the others hold", async () => {
  const before = await stack.outputs();
  issued = { caCertPem: String(before.caCertPem), certs: before.certs as Record<Member, string> };
  expect(await checkedBy("att-01", "att-03")).toMatchObject({ ok: true });
  await stack.setConfig("members", "2");
  expectExit(await stack.up());
  expect((await lab.domainNames("dom0-a")).filter((d) => d.startsWith("att-03"))).toEqual([]);
  expect(await checkedBy("att-01", "att-03")).toMatchObject({
    ok: false,
    out: expect.stringContaining("certificate revoked"),
  });
  expect(await checkedBy("att-02", "att-03")).toMatchObject({ ok: false });
  expect(await checkedBy("att-01", "att-02")).toMatchObject({ ok: true, out: expect.stringContaining("OK") });
  expect(await reachable(["att-01", "att-02"])).toEqual(allPairs(["att-01", "att-02"]));
});

it("a PCR extended out of band is drift in preview --refresh naming the PCR, and up refuses that member and cuts it off", async () => {
  const member: Member = "att-02";
  const vtpm = labStatus(lab.stateDir)
    .find((h) => h.name === HOSTS[1])!
    .vtpms.find((v) => v.domain === `${member}-vtpm`)!;
  expect(vtpm.tpm).toBe("2.0");
  const event = createHash("sha1").update("out of band").digest("hex");
  const extended = spawnSync("tpm2_pcrextend", [`5:sha1=${event}`], {
    env: { ...process.env, TPM2TOOLS_TCTI: `swtpm:path=${vtpm.server}` },
    encoding: "utf8",
  });
  expect(extended.stderr).toBe("");
  expect(extended.status).toBe(0);
  const now = sha1(Buffer.concat([Buffer.from(PCR5, "hex"), Buffer.from(event, "hex")])).toString("hex");

  const p = await stack.preview({ refresh: true });
  expectExit(p);
  const drift = `${PCR5} (changed on the host: PCR 5 is ${now}, the baseline says ${PCR5})`;
  const update = p.steps.find((s) => s.name === `${member}-attestation` && s.op === "update");
  expect(update?.changedInputs).toEqual(["baseline"]);
  expect(JSON.stringify(stepsOf(p, `${member}-attestation`))).toContain(JSON.stringify(drift));
  // The other member (TPM 1.2) still proves its baseline.
  expect(p.steps.filter((s) => s.name === "att-01-attestation" && s.op === "update")).toEqual([]);

  const r = await stack.up({ refresh: true });
  expect(r.code).not.toBe(0);
  expect(text(r)).toContain(
    `member ${member} is not admitted to its TVD: PCR 5 is ${now}, the baseline says ${PCR5} ` +
      `(what the member booted differs from the cmdline ${JSON.stringify(cmdline)} and initrd file ${files.initrd} declared)`,
  );
  expect(text(r)).not.toContain("member att-01 is not admitted");
  // Cut off at once: its port is back on hold, and no ping passes either way.
  expect(text(r)).toContain(`its port tvp-${member} is held on tvh-att on `);
  expect(await bridgeOf(member)).toBe("tvh-att");
  expect(await bridgeOf("att-01")).toBe("tvd-att");
  expect(await reachable(["att-01", member])).toEqual([]);
  // Its certificates are on hold: the CRL att-01 now holds rejects att-02's, and still takes att-01's.
  expect(await checkedBy("att-01", member)).toMatchObject({
    ok: false,
    out: expect.stringContaining("certificate revoked"),
  });
  expect(await checkedBy("att-01", "att-01")).toMatchObject({ ok: true });
  // The next up, without a refresh, asks again and refuses again: nothing re-admits it silently.
  const again = await stack.up();
  expect(again.code).not.toBe(0);
  expect(text(again)).toContain(`member ${member} is not admitted to its TVD: PCR 5 is ${now}`);
  expect(await bridgeOf(member)).toBe("tvh-att");
});

it("destroy removes the TVD and leaves the template", async () => {
  expectExit(await stack.destroy());
  for (const host of HOSTS) {
    expect((await lab.domainNames(host)).filter((d) => d.startsWith("att-"))).toEqual([]);
    expect(await lab.check(host, 'test -f "$1" && echo kept', `${BASE}/base.raw`)).toContain("kept");
  }
});
