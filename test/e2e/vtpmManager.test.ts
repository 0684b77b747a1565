/**
 * VtpmManager through the real Pulumi CLI against a lab host: create, no changes, drift when
 * the manager is stopped out of band, repair, refusal to destroy under a vTPM, destroy with
 * the image archived, and refusal to overwrite an existing image unless adopted.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import type { LabHostRecord } from "../../lab/host";
import { cfg, startTestLab, type TestLab } from "../support/lab";
import { expectExit, TestStack } from "./pulumi";

jest.setTimeout(10 * 60_000);

const fixture = path.join(__dirname, "fixtures", "vtpm-manager");
const A = "dom0-a";
let lab: TestLab;
let host: LabHostRecord;
let stack: TestStack;

function config(extra: Record<string, { value: string; secret?: boolean }> = {}) {
  return {
    host: { value: host.host },
    port: { value: String(host.port) },
    hostKeyFingerprint: { value: host.hostKeyFingerprint },
    privateKey: { value: readFileSync(host.privateKeyPath, "utf8"), secret: true },
    ownerAuth: { value: "well-known", secret: true },
    ...extra,
  };
}

beforeAll(async () => {
  lab = await startTestLab({ hosts: 1 });
  host = lab.host(A);
  stack = await TestStack.create({ programDir: fixture, config: config() });
});

afterAll(async () => {
  await stack?.dispose();
  await lab?.stop();
});

it("up creates the image, the config and a running, ready manager", async () => {
  const up = await stack.up();
  expectExit(up);
  expect(up.steps).toContainEqual(expect.objectContaining({ name: "manager", op: "create" }));
  expect((await lab.sh(A, "stat -c %s /var/lib/xen/vtpm/vtpmmgr.img")).stdout.trim()).toBe(
    String(16 * 1024 * 1024),
  );
  expect((await lab.sh(A, "stat -c %a /etc/xen/vtpmmgr.cfg")).stdout.trim()).toBe("600");
  expect((await lab.sh(A, "cat /etc/xen/vtpmmgr.cfg")).stdout).toContain('extra = "owner_auth=well-known"');
  expect((await lab.xl(A, "domid", "vtpmmgr")).exitCode).toBe(0);
  expect((await lab.sh(A, "cat /var/log/xen/console/guest-vtpmmgr.log")).stdout).toContain(
    "Waiting for commands",
  );
  expect((await stack.outputs()).running).toBe(true);
  const raw = await stack.cli(["stack", "export", "--stack", stack.stackName]);
  expect(raw.stdout).not.toContain("well-known");
});

it("preview right after up shows no changes", async () => {
  expectExit(await stack.preview({ expectNoChanges: true }));
});

it("preview --refresh shows a manager stopped out of band as drift on running, and up repairs it", async () => {
  expect((await lab.xl(A, "destroy", "vtpmmgr")).exitCode).toBe(0);
  const preview = await stack.preview({ refresh: true });
  expectExit(preview);
  const refresh = preview.steps.find((s) => s.name === "manager" && s.op === "refresh");
  expect(refresh?.changedOutputs).toEqual(expect.arrayContaining(["domid", "running"]));
  const update = preview.steps.find((s) => s.name === "manager" && s.op === "update");
  expect(update?.changedInputs).toEqual(["running"]);

  expectExit(await stack.refresh());
  expectExit(await stack.up());
  expect((await lab.xl(A, "domid", "vtpmmgr")).exitCode).toBe(0);
  expectExit(await stack.preview({ expectNoChanges: true, refresh: true }));
});

it("refuses to destroy the manager while a vTPM domain uses it, naming the domain", async () => {
  await lab.sh(A, "dd if=/dev/zero of=/var/lib/xen/vtpm/user1.img bs=8M count=1 status=none");
  await lab.writeFile(A, "/etc/xen/user1.cfg", cfg.vtpm("user1", randomUUID()));
  expect((await lab.xl(A, "create", "/etc/xen/user1.cfg")).exitCode).toBe(0);
  const destroy = await stack.destroy();
  expectExit(destroy, 1);
  expect(destroy.diagnostics.join("\n")).toMatch(
    /refusing to destroy vTPM manager vtpmmgr .*domains use it as their vTPM backend: user1/,
  );
  expect((await lab.xl(A, "domid", "vtpmmgr")).exitCode).toBe(0);
  expect((await lab.xl(A, "destroy", "user1")).exitCode).toBe(0);
});

it("destroy stops the idle manager, removes its config and archives its image", async () => {
  expectExit(await stack.destroy());
  expect((await lab.xl(A, "domid", "vtpmmgr")).exitCode).toBe(1);
  expect((await lab.sh(A, "test -e /etc/xen/vtpmmgr.cfg")).exitCode).toBe(1);
  expect((await lab.sh(A, "test -e /var/lib/xen/vtpm/vtpmmgr.img")).exitCode).toBe(1);
  const archived = (await lab.sh(A, "ls /var/lib/xen/pulumi-tvd/archive")).stdout.trim();
  expect(archived).toMatch(/^vtpmmgr\.img\.\d{8}T\d{6}Z$/);
  // Destroyed while idle: the emulator saw a clean shutdown.
  expect((await lab.sh(A, "cat /var/log/xen/console/guest-vtpmmgr.log")).stdout).not.toContain("ERROR[VTPM]");
});

it("never overwrites an existing manager image; adopt takes it over", async () => {
  await lab.sh(
    A,
    "dd if=/dev/zero of=/var/lib/xen/vtpm/vtpmmgr.img bs=16M count=1 status=none && printf KEYS | dd of=/var/lib/xen/vtpm/vtpmmgr.img conv=notrunc status=none",
  );
  const up = await stack.up();
  expectExit(up, 1);
  expect(up.diagnostics.join("\n")).toMatch(
    /vtpmmgr\.img already exists on .*no ownership record\); set adopt: true to take it over/,
  );
  expect((await lab.sh(A, "head -c 4 /var/lib/xen/vtpm/vtpmmgr.img")).stdout).toBe("KEYS");
  expect((await lab.sh(A, "ls /var/lib/xen/vtpm/ | grep -c partial || true")).stdout.trim()).toBe("0");

  // Adoption checks the config too: without one, it says what is missing.
  await stack.setConfig("adopt", "true");
  const refused = await stack.up();
  expectExit(refused, 1);
  expect(refused.diagnostics.join("\n")).toMatch(
    /cannot adopt vTPM manager vtpmmgr .*configDir: \/etc\/xen \(missing on the host: \/etc\/xen\/vtpmmgr\.cfg\)/,
  );
});
