/**
 * Runs the conformance scenarios on one host of an inventory (the local lab's or the real-Xen
 * lab's) and writes what it observed:
 *   node build/lab/conformance/run.js --inventory lab/state/xen/inventory.json --host xen-a --out <file>
 */
import { readFileSync, writeFileSync } from "node:fs";
import { closeAllSessions, type SshSession } from "../../provider/transport/ssh";
import type { Inventory } from "../lab";
import { sessionForHost } from "../sshd";
import { normalizeStderr, PREPARE, projectObservation, SCENARIOS, type Observation } from "./scenarios";

export async function runScenarios(session: SshSession): Promise<Observation[]> {
  const prepared = await session.run(["sh", "-c", PREPARE]);
  if (prepared.exitCode !== 0) throw new Error(`preparing the host failed: ${prepared.stderr}`);
  const out: Observation[] = [];
  for (const s of SCENARIOS) {
    for (const [file, content] of Object.entries(s.files ?? {})) {
      const w = await session.run(["sh", "-c", 'cat > "$1"', "sh", file], { stdin: content });
      if (w.exitCode !== 0) throw new Error(`writing ${file} failed: ${w.stderr}`);
    }
    // Real xl waits for a domain's devices; under TCG a create takes up to half a minute.
    const r = await session.run(s.argv, { timeoutSec: 300 });
    const observed: Record<string, unknown> = {};
    for (const argv of s.observe ?? []) {
      const o = await session.run(argv);
      observed[argv.join(" ")] =
        o.exitCode === 0 ? projectObservation(argv, o.stdout) : { exitCode: o.exitCode };
    }
    out.push({ id: s.id, exitCode: r.exitCode, stderr: normalizeStderr(r.stderr), observed });
  }
  return out;
}

async function main(argv: string[]): Promise<void> {
  const arg = (flag: string) => {
    const i = argv.indexOf(flag);
    if (i < 0 || !argv[i + 1]) throw new Error(`usage: run.js --inventory <file> --host <name> --out <file>`);
    return argv[i + 1];
  };
  const inventory = JSON.parse(readFileSync(arg("--inventory"), "utf8")) as Inventory;
  const h = inventory.hosts.find((x) => x.name === arg("--host"));
  if (!h) throw new Error(`no host ${arg("--host")} in ${arg("--inventory")}`);
  const session = await sessionForHost(h);
  const version = (await session.run(["xl", "info", "xen_version"])).stdout.trim();
  const observations = await runScenarios(session);
  writeFileSync(
    arg("--out"),
    JSON.stringify(
      { kind: h.kind, xenVersion: version, at: new Date().toISOString(), observations },
      null,
      2,
    ) + "\n",
  );
  await closeAllSessions();
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
