/**
 * A lab host's xl and xenstore-* go through its tool server (lab/xl/toolServer.ts) by a thin
 * client (lab/xl/toolClient.c). Against a real lab host over SSH: each call answers as the same
 * call run as its own Node process (the emulator's entry points, still there as the client's
 * fallback), in the caller's directory; the server never holds the host's lock; a killed server
 * is started again by the next call; a server whose build changed hands over to the new one.
 */
import { utimesSync } from "node:fs";
import * as path from "node:path";
import { startTestLab, type TestLab } from "../support/lab";

jest.setTimeout(120_000);

let lab: TestLab;
const A = "dom0-a";
const build = path.resolve(__dirname, "..", "..", "build");

beforeAll(async () => {
  lab = await startTestLab({ hosts: 1 });
});

afterAll(async () => lab?.stop());

const sh = (script: string, ...args: string[]) => lab.sh(A, script, ...args);

/**
 * The pids of this host's tool servers. Lab hosts share the machine's /proc (no pid namespace),
 * so a server counts when it runs in this host's mount namespace, not another test file's host.
 */
async function servers(): Promise<string[]> {
  const r = await sh(
    'self=$(readlink /proc/$$/ns/mnt); for p in /proc/[0-9]*; do [ "$(readlink $p/ns/mnt 2>/dev/null)" = "$self" ] || continue; tr "\\0" " " <$p/cmdline 2>/dev/null | grep -q "^[^ ]*node [^ ]*/toolServer.js " && echo ${p#/proc/}; done; true',
  );
  return r.stdout.split("\n").filter(Boolean);
}

/** The same call as its own process: the emulator's entry point under the host's lock. */
async function ownProcess(tool: string, ...args: string[]) {
  const main = tool === "xl" ? ["xl/main.js"] : ["xenstore/main.js", tool];
  return sh(
    'node=$1 main=$2; shift 2; exec flock /var/lib/tvd-lab/lab.lock "$node" "$main" "$@"',
    process.execPath,
    path.join(build, "lab", main[0]),
    ...main.slice(1),
    ...args,
  );
}

describe("the lab host's tool server", () => {
  it("answers each call as the call's own process would: stdout, stderr and exit code", async () => {
    // Each call runs twice, served and as its own process, from the same state: `before` (a
    // served xenstore-write) sets it up again for a call that changes it.
    const put = ["xenstore-write", "/tool-server/v", 'line one\nlíne "two" $x'];
    const calls: Array<{ call: string[]; before?: string[] }> = [
      { call: ["xl", "info"] },
      { call: ["xl", "list", "no-such-domain"] },
      { call: ["xl", "domid", "Domain-0"] },
      { call: ["xl", "destroy", "no-such-domain"] },
      { call: ["xl", "create", "/etc/xen/missing.cfg"] },
      { call: ["xl", "frobnicate"] },
      { call: put },
      { call: ["xenstore-read", "/tool-server/v"] },
      { call: ["xenstore-read", "/tool-server/v", "/tool-server/missing"] },
      { call: ["xenstore-ls", "/tool-server"] },
      { call: ["xenstore-list", "/no-such"] },
      { call: ["xenstore-rm", "/tool-server"], before: put },
      { call: ["xenstore-rm", "/tool-server"] },
    ];
    const served = (tool: string, ...args: string[]) =>
      sh('tool=$1; shift; exec "$tool" "$@"', tool, ...args);
    for (const { call, before } of calls) {
      const [tool, ...args] = call;
      if (before) expect((await served(before[0], ...before.slice(1))).exitCode).toBe(0);
      const byServer = await served(tool, ...args);
      if (before) expect((await served(before[0], ...before.slice(1))).exitCode).toBe(0);
      const own = await ownProcess(tool, ...args);
      const what = call.join(" ");
      expect({ what, ...byServer }).toEqual({ what, ...own });
    }
    expect(await servers()).toHaveLength(1);
  });

  it("answers an error the emulator did not expect with exit 1 and its message, as Node does", async () => {
    const served = await sh("xenstore-read relative/path");
    const own = await ownProcess("xenstore-read", "relative/path");
    expect(own.exitCode).toBe(1);
    expect(served.exitCode).toBe(1);
    expect(own.stderr).toContain("Error: xenstore path must be absolute: relative/path");
    expect(served.stderr).toContain("Error: xenstore path must be absolute: relative/path");
  });

  it("runs a call in the caller's working directory", async () => {
    await lab.writeFile(A, "/etc/xen/rel.cfg", 'name = "rel" memory=16\n');
    const r = await sh("cd /etc/xen && xl create rel.cfg");
    // libxlutil read the file (it names the syntax error in it): the relative path was found.
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("rel.cfg:1: config parsing error near `memory'");
  });

  it("never holds the host's lock between calls", async () => {
    await lab.xl(A, "list");
    expect((await sh("flock -n /var/lib/tvd-lab/lab.lock true")).exitCode).toBe(0);
  });

  it("is started again by the next call when it was killed", async () => {
    const [before] = await servers();
    expect(before).toBeDefined();
    await sh('kill -KILL "$1"', before);
    const r = await lab.xl(A, "info");
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^host\s+: /m);
    const after = await servers();
    expect(after).toHaveLength(1);
    expect(after[0]).not.toBe(before);
  });

  it("hands over to a new server once its build changed, after answering", async () => {
    const [before] = await servers();
    const file = path.join(build, "lab", "xl", "toolServer.js");
    const now = new Date();
    utimesSync(file, now, now);
    expect((await lab.xl(A, "list")).exitCode).toBe(0); // answered by the old server, which then exits
    expect((await lab.xl(A, "list")).exitCode).toBe(0); // a new one
    const after = await servers();
    expect(after).toHaveLength(1);
    expect(after[0]).not.toBe(before);
  });
});
