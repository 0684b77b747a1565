/**
 * The transport against a real sshd (a lab host): hostile argv arrives literally, one
 * connection carries every command, channels are bounded, stats are recorded.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { HOSTILE } from "../support/hostile";
import { connectionSchema } from "../../provider/transport/connection";
import { closeAllSessions, sessionFor } from "../../provider/transport/ssh";
import { startTestLab, type TestLab } from "../support/lab";

jest.setTimeout(120_000);

let lab: TestLab;
const A = "dom0-a";

beforeAll(async () => {
  lab = await startTestLab({ hosts: 1 });
});

afterAll(async () => lab?.stop());

it("delivers every hostile string as one literal argument through a real sshd", async () => {
  const s = await lab.session(A);
  const r = await s.run(["printf", "%s\\0", ...HOSTILE]);
  expect(r.exitCode).toBe(0);
  expect(r.stdout.split("\0").slice(0, -1)).toEqual(HOSTILE);
  // Nothing was executed by the shell on the way.
  expect((await s.run(["test", "-e", "/tmp/pwned"])).exitCode).toBe(1);
});

it("keeps a leading dash an argument, never an option of the remote shell", async () => {
  const s = await lab.session(A);
  const r = await s.run(["printf", "[%s]", "-c", "--", "-rf"]);
  expect(r.stdout).toBe("[-c][--][-rf]");
});

it("runs many commands over one connection with bounded channels, and counts them", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "tvd-stats-"));
  const stats = path.join(dir, "stats.jsonl");
  process.env.PULUMI_TVD_STATS = stats;
  try {
    await closeAllSessions();
    // More at once than sshd's MaxSessions (10), each asking the pool for its session: the pool
    // opens one connection and the transport queues channels instead of failing.
    const results = await Promise.all(
      Array.from({ length: 30 }, async (_, i) => (await lab.session(A)).run(["echo", String(i)])),
    );
    expect(results.map((r) => r.stdout.trim())).toEqual(Array.from({ length: 30 }, (_, i) => String(i)));
    const events = readFileSync(stats, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(events.filter((e) => e.event === "exec")).toHaveLength(30);
    expect(events.filter((e) => e.event === "connect")).toHaveLength(1);
  } finally {
    delete process.env.PULUMI_TVD_STATS;
    rmSync(dir, { recursive: true, force: true });
  }
});

it("times a command out, naming the host and the knob", async () => {
  const s = await lab.session(A);
  await expect(s.run(["sleep", "5"], { timeoutSec: 0.5 })).rejects.toThrow(
    /timed out after 0.5s .*commandTimeoutSec/,
  );
});

it("says loudly when host keys are not verified", async () => {
  const h = lab.host(A);
  const warn = jest.spyOn(console, "warn").mockImplementation(() => undefined);
  try {
    const s = await sessionFor(
      connectionSchema.parse({
        host: h.host,
        port: h.port,
        privateKey: readFileSync(h.privateKeyPath, "utf8"),
        insecureSkipHostKeyVerification: true,
      }),
    );
    expect((await s.run(["true"])).exitCode).toBe(0);
    expect(warn).toHaveBeenCalledWith(
      expect.stringMatching(/NOT verifying the host key of root@127\.0\.0\.1:\d+/),
    );
  } finally {
    warn.mockRestore();
  }
});
