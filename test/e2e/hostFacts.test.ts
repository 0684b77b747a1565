import { readFileSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { LabHostRecord } from "../../lab/host";
import { startTestLab, type TestLab } from "../support/lab";
import { expectExit, TestStack } from "./pulumi";

jest.setTimeout(10 * 60_000);

const fixture = path.join(__dirname, "fixtures", "host-facts");

let lab: TestLab;
let host: LabHostRecord;

beforeAll(async () => {
  lab = await startTestLab({ hosts: 1 });
  host = lab.host("dom0-a");
});

afterAll(async () => lab?.stop());

/** The fixture's stack config for the lab host, with any value overridden. */
function configFor(overrides: Record<string, string> = {}) {
  const plain = {
    host: host.host,
    port: String(host.port),
    hostKeyFingerprint: host.hostKeyFingerprint,
    ...overrides,
  };
  return {
    ...Object.fromEntries(Object.entries(plain).map(([k, v]) => [k, { value: v }])),
    privateKey: { value: readFileSync(host.privateKeyPath, "utf8"), secret: true },
  };
}

describe("HostFacts through the real Pulumi CLI", () => {
  let stack: TestStack;
  let stats: string;

  beforeAll(async () => {
    stats = path.join(lab.stateDir, "stats.jsonl");
    stack = await TestStack.create({
      programDir: fixture,
      config: configFor(),
      env: { PULUMI_TVD_STATS: stats },
    });
  });

  afterAll(async () => stack?.dispose());

  it("up records the host's facts", async () => {
    const up = await stack.up();
    expectExit(up);
    expect(up.steps).toContainEqual(expect.objectContaining({ name: "dom0-a", op: "create" }));
    const out = await stack.outputs();
    expect(out.kernel).toBe(os.release());
    // The lab host's xl reports Xen 4.17.7, as a Debian 12 dom0 does.
    expect(out.xenVersion).toBe("4.17.7");
    expect(out.qemuImgVersion).toMatch(/^\d+\.\d+/);
    expect(out.swtpmVersion).toMatch(/^\d+\.\d+/);
    // The host's own 4 GiB /var/lib/xen, nearly empty.
    expect(out.xenDataFreeMiB).toBeGreaterThan(3500);
    expect(out.xenDataFreeMiB).toBeLessThanOrEqual(4096);
    expect(out.providerVersion).toBe(JSON.parse(readFileSync("package.json", "utf8")).version);
  });

  it("keeps the private key a secret in state", async () => {
    const raw = await stack.cli(["stack", "export", "--stack", stack.stackName]);
    expect(raw.stdout).not.toContain("PRIVATE KEY");
    const state = await stack.exportState();
    const facts = state.deployment.resources?.find((r) => String(r.urn).endsWith("::dom0-a"));
    expect(JSON.stringify(facts)).toContain("PRIVATE KEY");
  });

  it("preview right after up shows no changes", async () => {
    const preview = await stack.preview({ expectNoChanges: true });
    expectExit(preview);
    expect(preview.steps.find((s) => s.name === "dom0-a")?.op).toBe("same");
  });

  it("preview --refresh shows a fact that changed on the host", async () => {
    const before = (await stack.outputs()).xenDataFreeMiB as number;
    const dd = await lab.sh(
      "dom0-a",
      "dd if=/dev/zero of=/var/lib/xen/filler bs=1M count=64 status=none && sync",
    );
    expect(dd.exitCode).toBe(0);
    rmSync(stats, { force: true });
    const preview = await stack.preview({ refresh: true });
    expectExit(preview);
    // The dynamic provider's process: one SSH connection, one round trip for the one resource.
    const events = readFileSync(stats, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(events.map((e) => e.event).sort()).toEqual(["connect", "exec"]);
    const refresh = preview.steps.find((s) => s.name === "dom0-a" && s.op === "refresh");
    expect(refresh?.changedOutputs).toEqual(["xenDataFreeMiB"]);
    const event = preview.events.find((e) => e.resOutputsEvent?.metadata.urn.endsWith("::dom0-a"));
    const after = event?.resOutputsEvent?.metadata.new?.outputs?.xenDataFreeMiB as number;
    expect(before - after).toBeGreaterThanOrEqual(64);
    expect(before - after).toBeLessThanOrEqual(65);
  });

  it("destroy removes the resource from the stack", async () => {
    const destroy = await stack.destroy();
    expectExit(destroy);
    expect(destroy.steps).toContainEqual(expect.objectContaining({ name: "dom0-a", op: "delete" }));
    const state = await stack.exportState();
    expect((state.deployment.resources ?? []).filter((r) => r.type !== "pulumi:pulumi:Stack")).toHaveLength(
      0,
    );
  });
});

describe("HostFacts refuses what it must refuse", () => {
  const stacks: TestStack[] = [];

  afterAll(async () => {
    for (const s of stacks) await s.dispose();
  });

  async function stackWith(overrides: Record<string, string>): Promise<TestStack> {
    const stack = await TestStack.create({ programDir: fixture, config: configFor(overrides) });
    stacks.push(stack);
    return stack;
  }

  it("refuses a host whose key does not match the pinned fingerprint, naming the key it saw", async () => {
    const wrong = "SHA256:" + "A".repeat(43);
    const stack = await stackWith({ hostKeyFingerprint: wrong });
    const up = await stack.up();
    expectExit(up, 1);
    const message = up.diagnostics.join("\n");
    expect(message).toContain(`host key mismatch for ${host.host}:${host.port}`);
    expect(message).toContain(`expected ${wrong}`);
    expect(message).toContain(`ssh-ed25519 ${host.hostKeyFingerprint}`);
    const state = await stack.exportState();
    expect((state.deployment.resources ?? []).some((r) => String(r.urn).endsWith("::dom0-a"))).toBe(false);
  });

  it("rejects hostile and impossible inputs in check, every one at once, before connecting", async () => {
    const stack = await stackWith({ host: "dom0;touch /tmp/pwned", port: "0" });
    const preview = await stack.preview();
    expectExit(preview, 1);
    const message = preview.diagnostics.join("\n");
    expect(message).toMatch(/connection\.host value .* must be a hostname or IP address/);
    expect(message).toMatch(/connection\.port value .* must be a TCP port between 1 and 65535/);
  });
});
