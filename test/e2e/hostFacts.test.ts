import { readFileSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { mkdtempSync } from "node:fs";
import { runChecked } from "../../lab/exec";
import { freePort, startSshdHost, type SshdHost } from "../../lab/sshdHost";
import { expectExit, TestStack } from "./pulumi";

jest.setTimeout(10 * 60_000);

const fixture = path.join(__dirname, "fixtures", "host-facts");

/** Runs a command on the test host through the OpenSSH client, the way an operator would. */
async function onHost(host: SshdHost, command: string): Promise<string> {
  const r = await runChecked([
    "ssh",
    "-i",
    host.privateKeyPath,
    "-p",
    String(host.port),
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    `${host.user}@${host.host}`,
    command,
  ]);
  return r.stdout;
}

describe("HostFacts through the real Pulumi CLI", () => {
  let stateDir: string;
  let host: SshdHost;
  let stack: TestStack;

  beforeAll(async () => {
    stateDir = mkdtempSync(path.join(os.tmpdir(), "tvd-sshd-"));
    host = await startSshdHost({
      name: "facts-a",
      stateDir,
      port: await freePort(),
      mounts: [{ kind: "tmpfs", path: "/var/lib/xen", sizeMiB: 64 }],
    });
    stack = await TestStack.create({
      programDir: fixture,
      config: {
        host: { value: host.host },
        port: { value: String(host.port) },
        privateKey: { value: readFileSync(host.privateKeyPath, "utf8"), secret: true },
        hostKeyFingerprint: { value: host.hostKeyFingerprint },
      },
    });
  });

  afterAll(async () => {
    await stack?.dispose();
    await host?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("up records the host's facts", async () => {
    const up = await stack.up();
    expectExit(up);
    expect(up.steps).toContainEqual(expect.objectContaining({ name: "dom0-a", op: "create" }));
    const out = await stack.outputs();
    expect(out.kernel).toBe(os.release());
    expect(out.qemuImgVersion).toMatch(/^\d+\.\d+/);
    expect(out.swtpmVersion).toMatch(/^\d+\.\d+/);
    // The host's private 64 MiB tmpfs, nearly empty.
    expect(out.xenDataFreeMiB).toBeGreaterThan(60);
    expect(out.xenDataFreeMiB).toBeLessThanOrEqual(64);
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
    await onHost(host, "dd if=/dev/zero of=/var/lib/xen/filler bs=1M count=16 status=none");
    const preview = await stack.preview({ refresh: true });
    expectExit(preview);
    const refresh = preview.steps.find((s) => s.name === "dom0-a" && s.op === "refresh");
    expect(refresh?.changedOutputs).toEqual(["xenDataFreeMiB"]);
    const event = preview.events.find((e) => e.resOutputsEvent?.metadata.urn.endsWith("::dom0-a"));
    expect(event?.resOutputsEvent?.metadata.new?.outputs?.xenDataFreeMiB).toBeLessThanOrEqual(48);
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
  let stateDir: string;
  let host: SshdHost;
  const stacks: TestStack[] = [];

  beforeAll(async () => {
    stateDir = mkdtempSync(path.join(os.tmpdir(), "tvd-sshd-"));
    host = await startSshdHost({ name: "facts-b", stateDir, port: await freePort() });
  });

  afterAll(async () => {
    for (const s of stacks) await s.dispose();
    await host?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  async function stackWith(config: Record<string, string>): Promise<TestStack> {
    const base = {
      host: host.host,
      port: String(host.port),
      hostKeyFingerprint: host.hostKeyFingerprint,
      ...config,
    };
    const stack = await TestStack.create({
      programDir: fixture,
      config: {
        ...Object.fromEntries(Object.entries(base).map(([k, v]) => [k, { value: v }])),
        privateKey: { value: readFileSync(host.privateKeyPath, "utf8"), secret: true },
      },
    });
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
