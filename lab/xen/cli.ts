/**
 * The real-Xen lab:
 *
 *   npm run lab -- up --xen [--hosts N] [--first-port P] [--memory-mib M] [--dom0-memory-mib M]
 *                           [--cpus C] [--state-dir DIR]     boot (idempotent); print the inventory
 *   npm run lab -- status --xen                             hosts, QEMU pid, memory
 *   npm run lab -- down --xen                               power every host off (files stay)
 *
 * (or `node build/lab/xen/cli.js up|status|down ...`). State and inventory.json live in
 * lab/state/xen/ by default; the inventory has the local lab's format with "kind": "xen".
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import {
  bootXenHost,
  buildRootfs,
  closeAllSessions,
  defaultXenStateDir,
  entryOfXen,
  qemuMemory,
  readXenHost,
  stopXenHost,
  xenHostName,
  type XenHostRecord,
} from "./boot";
import { alive } from "../proc";

function take(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  if (v === undefined || v.startsWith("--")) throw new Error(`${name} needs a value`);
  args.splice(i, 2);
  return v;
}

function takeNum(args: string[], name: string): number | undefined {
  const v = take(args, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive whole number, got ${v}`);
  return n;
}

function hostsIn(stateDir: string): XenHostRecord[] {
  if (!existsSync(stateDir)) return [];
  return readdirSync(stateDir)
    .map((d) => readXenHost(path.join(stateDir, d)))
    .filter((h): h is XenHostRecord => h !== undefined)
    .sort((a, b) => a.name.localeCompare(b.name));
}

export async function xenMain(argv: string[]): Promise<void> {
  const args = [...argv];
  const command = args.shift();
  const stateDir = path.resolve(take(args, "--state-dir") ?? defaultXenStateDir());
  switch (command) {
    case "up": {
      const n = takeNum(args, "--hosts") ?? 1;
      const firstPort = takeNum(args, "--first-port") ?? 2301;
      const memoryMiB = takeNum(args, "--memory-mib");
      const dom0MemoryMiB = takeNum(args, "--dom0-memory-mib");
      const cpus = takeNum(args, "--cpus");
      if (args.length) throw new Error(`unexpected arguments: ${args.join(" ")}`);
      if (n > 26) throw new Error("--hosts must be at most 26");
      mkdirSync(stateDir, { recursive: true });
      const t0 = Date.now();
      const buildDir = await buildRootfs();
      console.log(`dom0 image: ${buildDir} (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
      const hosts = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          bootXenHost({
            name: xenHostName(i),
            index: i,
            stateDir,
            port: firstPort + i,
            buildDir,
            memoryMiB,
            dom0MemoryMiB,
            cpus,
          }),
        ),
      );
      const inventory = { hosts: hosts.map(entryOfXen) };
      writeFileSync(path.join(stateDir, "inventory.json"), JSON.stringify(inventory, null, 2) + "\n");
      for (const h of hosts) {
        console.log(
          `${h.name}  ssh -i ${h.privateKeyPath} -p ${h.port} ${h.user}@${h.host}  ${h.hostKeyFingerprint}` +
            (h.bootSeconds ? `  booted in ${h.bootSeconds.toFixed(1)}s` : ""),
        );
      }
      console.log(`xen lab up: ${hosts.length} host(s) ready in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
      console.log(`inventory: ${path.join(stateDir, "inventory.json")}`);
      await closeAllSessions();
      return;
    }
    case "status": {
      const hosts = hostsIn(stateDir);
      if (!hosts.length) console.log("xen lab: no hosts");
      for (const h of hosts) {
        const pidFile = path.join(h.dir, "qemu.pid");
        const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, "utf8").trim()) : 0;
        const up = alive(pid);
        const mem = up ? qemuMemory(pid) : undefined;
        console.log(
          `${h.name}  ${up ? "running" : "STOPPED"}  127.0.0.1:${h.port}` +
            (mem ? `  qemu pid ${pid}  RSS ${mem.rssMiB} MiB  PSS ${mem.pssMiB} MiB` : "") +
            `  console ${path.join(h.dir, "console.log")}`,
        );
      }
      return;
    }
    case "down": {
      await Promise.all(hostsIn(stateDir).map((h) => stopXenHost(h.dir)));
      await closeAllSessions();
      console.log("xen lab down");
      return;
    }
    default:
      throw new Error(`unknown command ${command ?? "(none)"}; use up, status or down`);
  }
}

if (require.main === module) {
  xenMain(process.argv.slice(2)).catch((err: Error) => {
    console.error(`lab --xen: ${err.message}`);
    process.exit(1);
  });
}
