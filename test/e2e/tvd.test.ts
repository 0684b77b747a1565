/**
 * A Trusted Virtual Domain of 12 members over a 3-host lab through the real Pulumi CLI: deploy,
 * add two members, remove one, rotate every certificate, repair a member destroyed out of band,
 * destroy. After each step the hosts themselves are asked what is there.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SEEDED_IMAGES_LISTING, startTestLab, type TestLab } from "../support/lab";
import { disposeThen, expectExit, TestStack, type OperationResult } from "./pulumi";

jest.setTimeout(20 * 60_000);

const fixture = path.join(__dirname, "fixtures", "tvd");
const HOSTS = ["dom0-a", "dom0-b", "dom0-c"];
let lab: TestLab;
let stack: TestStack;
let userKey: string;

interface MemberOut {
  host: string;
  domain: string;
  vtpmUuid: string;
  ip: string;
  sshHostKeyFingerprint: string;
  x509Serial: string;
  sshCertSerial: string;
}

beforeAll(async () => {
  lab = await startTestLab({ hosts: 3 });
  const keyDir = mkdtempSync(path.join(os.tmpdir(), "tvd-user-key-"));
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "ops@example", "-f", `${keyDir}/id`]);
  userKey = readFileSync(`${keyDir}/id.pub`, "utf8").trim();
  rmSync(keyDir, { recursive: true, force: true });
  stack = await TestStack.create({
    programDir: fixture,
    config: {
      inventory: { value: path.join(lab.stateDir, "inventory.json") },
      members: { value: "12" },
      authorizedKey: { value: userKey },
    },
  });
  stack.secrets.watchDom0s(lab); // issue 12.5: its files scanned after each operation
});

// dispose scans for secrets in plaintext and fails on a finding; the lab stops whatever it says.
afterAll(() => disposeThen(stack, () => lab?.stop()));

async function sh(host: string, script: string, ...args: string[]): Promise<string> {
  const r = await lab.sh(host, script, ...args);
  if (r.exitCode !== 0) throw new Error(`${host}: ${script} exited ${r.exitCode}: ${r.stderr}`);
  return r.stdout;
}

/** Domain names running on each host, Domain-0 and the manager left out. */
async function domainsByHost(): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const h of HOSTS) {
    out[h] = (await lab.domainNames(h)).filter((n) => n !== "vtpmmgr");
  }
  return out;
}

function expected(count: number): Record<string, string[]> {
  const out: Record<string, string[]> = Object.fromEntries(HOSTS.map((h) => [h, []]));
  for (let i = 0; i < count; i++) {
    const name = `red-${String(i + 1).padStart(2, "0")}`;
    out[HOSTS[i % 3]].push(name, `${name}-vtpm`);
  }
  for (const h of HOSTS) out[h].sort();
  return out;
}

async function members(): Promise<Record<string, MemberOut>> {
  return (await stack.outputs()).members as Record<string, MemberOut>;
}

/** A file of a member's cloud-init seed, read back on its host with mtools. */
async function seedFile(host: string, member: string, file: string): Promise<string> {
  return sh(host, 'mcopy -n -i "$1" "::$2" -', `/var/lib/xen/images/${member}-seed.img`, file);
}

function opsOf(result: OperationResult): Record<string, string[]> {
  const ops: Record<string, string[]> = {};
  for (const s of result.steps) {
    if (s.op === "same" || s.op === "read" || s.op === "refresh") continue;
    (ops[s.op] ??= []).push(s.name);
  }
  for (const k of Object.keys(ops)) ops[k].sort();
  return ops;
}

/** An OpenSSH host certificate line, as the seed carries it. */
const CERT = /ssh-ed25519-cert-v01@openssh\.com \S+/;
let first: Record<string, MemberOut>;

it("deploys 12 members over 3 hosts, each with its vTPM, identity and seed", async () => {
  expectExit(await stack.up());
  expect(await domainsByHost()).toEqual(expected(12));
  first = await members();
  expect(Object.keys(first)).toHaveLength(12);
  const m1 = first["red-01"];
  expect(m1).toMatchObject({ host: "dom0-a", domain: "red-01", ip: "10.50.0.10/24" });
  expect(m1.sshHostKeyFingerprint).toMatch(/^SHA256:/);
  for (const h of HOSTS) {
    // The TVD's bridge and its VXLAN on every host.
    expect(await sh(h, "ip -o link show master tvd-red")).toMatch(/vx\d+/);
  }
  // The seed carries the member's identity, read back from the image on its host.
  const userData = await seedFile("dom0-a", "red-01", "user-data");
  expect(userData).toContain(userKey);
  expect(userData).toContain(`@cert-authority * ${(await stack.outputs()).sshCaPublicKey}`);
  const cert = userData.match(CERT)?.[0];
  expect(cert).toBeDefined();
  expect(await seedFile("dom0-a", "red-01", "meta-data")).toContain("red-01");
  expect(await seedFile("dom0-a", "red-01", "network-config")).toContain("10.50.0.10/24");
  // Members reach each other across hosts over the TVD's VXLAN.
  expect(await lab.guestPings("dom0-a", "red-01", "10.50.0.12")).toBe(true); // red-03 on dom0-c
  expect(await lab.guestPings("dom0-b", "red-05", "10.50.0.10")).toBe(true); // red-01 on dom0-a
  const summary = (await stack.outputs()).summary as string;
  expect(summary).toContain("12 members");
  expectExit(await stack.preview({ expectNoChanges: true }));
});

it("keeps every private key a secret in the stack's state", async () => {
  const raw = (await stack.cli(["stack", "export", "--stack", stack.stackName])).stdout;
  expect(raw).not.toMatch(/PRIVATE KEY/);
  const state = JSON.stringify(await stack.exportState());
  // Decrypted, they are there: the CA keys, each member's host key and X.509 key.
  expect(state.match(/BEGIN OPENSSH PRIVATE KEY/g)?.length).toBeGreaterThanOrEqual(13);
  expect(state).toMatch(/BEGIN (RSA |EC )?PRIVATE KEY/);
});

it("adding two members creates only theirs", async () => {
  await stack.setConfig("members", "14");
  const up = await stack.up();
  expectExit(up);
  const ops = opsOf(up);
  expect(Object.keys(ops)).toEqual(["create"]);
  expect(ops.create.every((n) => /^red-1[34]/.test(n))).toBe(true);
  expect(await domainsByHost()).toEqual(expected(14));
});

it("removing one member deletes only its own, archiving its vTPM image", async () => {
  await stack.setConfig("members", "13");
  const up = await stack.up();
  expectExit(up);
  const ops = opsOf(up);
  expect(Object.keys(ops)).toEqual(["delete"]);
  expect(ops.delete.every((n) => n.startsWith("red-14"))).toBe(true);
  expect(await domainsByHost()).toEqual(expected(13));
  expect(await sh("dom0-b", "ls /var/lib/xen/pulumi-tvd/archive")).toMatch(
    /^red-14-vtpm\.img\.\d{8}T\d{6}Z$/m,
  );
});

it("rotation reissues every certificate without touching guests or vTPMs", async () => {
  const before = await members();
  const domids = await sh("dom0-c", "xl domid red-03");
  const overlay = await sh("dom0-c", "stat -c %i /var/lib/xen/images/red-03.qcow2");
  const certBefore = (await seedFile("dom0-c", "red-03", "user-data")).match(CERT)?.[0];
  await stack.setConfig("rotation", "2026-11");
  const up = await stack.up();
  expectExit(up);
  const ops = opsOf(up);
  expect(Object.keys(ops)).toEqual(["update"]);
  expect(ops.update.every((n) => /-(identity|seed)$/.test(n))).toBe(true);
  const after = await members();
  for (const [name, m] of Object.entries(after)) {
    expect(m.sshHostKeyFingerprint).toBe(before[name].sshHostKeyFingerprint);
    expect(m.vtpmUuid).toBe(before[name].vtpmUuid);
    expect(m.x509Serial).not.toBe(before[name].x509Serial);
    expect(m.sshCertSerial).not.toBe(before[name].sshCertSerial);
  }
  expect(await sh("dom0-c", "xl domid red-03")).toBe(domids);
  expect(await sh("dom0-c", "stat -c %i /var/lib/xen/images/red-03.qcow2")).toBe(overlay);
  const certAfter = (await seedFile("dom0-c", "red-03", "user-data")).match(CERT)?.[0];
  expect(certAfter).toBeDefined();
  expect(certAfter).not.toBe(certBefore);
});

it("a member destroyed out of band shows as drift and up repairs it", async () => {
  expect((await lab.xl("dom0-b", "destroy", "red-05")).exitCode).toBe(0);
  const preview = await stack.preview({ refresh: true });
  expectExit(preview);
  const update = preview.steps.find((s) => s.name === "red-05" && s.op === "update");
  expect(update?.changedInputs).toEqual(["running"]);
  expectExit(await stack.refresh());
  expectExit(await stack.up());
  expect(await domainsByHost()).toEqual(expected(13));
  expectExit(await stack.preview({ expectNoChanges: true, refresh: true }));
});

it("destroy leaves every host with no domains, no bridges and only archived vTPM images", async () => {
  expectExit(await stack.destroy());
  for (const h of HOSTS) {
    expect((await lab.xl(h, "list")).stdout.trim().split("\n")).toHaveLength(2); // header + Domain-0
    expect(await sh(h, "ls -A /etc/xen")).toBe("");
    expect(await sh(h, "ls -A /var/lib/xen/images")).toBe(SEEDED_IMAGES_LISTING);
    expect(await sh(h, "ls -A /var/lib/xen/vtpm")).toBe("");
    expect(await sh(h, "ip -o link show | grep -c tvd-red || true")).toBe("0\n");
  }
  const archived = (await sh("dom0-a", "ls /var/lib/xen/pulumi-tvd/archive")).trim().split("\n");
  expect(archived.map((f) => f.replace(/\.\d{8}T\d{6}Z$/, "")).sort()).toEqual(
    [
      "red-01-vtpm.img",
      "red-04-vtpm.img",
      "red-07-vtpm.img",
      "red-10-vtpm.img",
      "red-13-vtpm.img",
      "vtpmmgr.img",
    ].sort(),
  );
});
