/**
 * npm run lab -- <command>
 *
 *   up [--hosts N] [--tpm2] [--memory-mib M] [--disk-mib D] [--manager-delay-sec S]
 *      [--shutdown-timeout-sec S] [--first-port P]      start (idempotent); print the inventory
 *   status                                             hosts, domains, vTPM and xenbus sockets
 *   reset                                              destroy all domains, empty Xen directories
 *   down                                               stop every host (files stay)
 *   fault <host> fail --match <regex> [--count N]      next N matching commands fail
 *   fault <host> latency --ms N                        delay every command
 *   fault <host> drop                                  cut open SSH connections
 *   fault <host> fill-disk                             fill /var/lib/xen
 *   fault <host> clear                                 remove all faults
 *
 * Every command takes --state-dir DIR (default lab/state).
 */
import * as path from "node:path";
import { clearFaults, dropConnections, failNext, fillDisk, setLatency } from "./faults";
import { defaultStateDir, inventoryPath, labDown, labHosts, labReset, labStatus, labUp } from "./lab";
import { xenMain } from "./xen/cli";

class UsageError extends Error {}

function takeOption(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const value = args[i + 1];
  if (value === undefined || value.startsWith("--")) throw new UsageError(`${name} needs a value`);
  args.splice(i, 2);
  return value;
}

function takeFlag(args: string[], name: string): boolean | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  args.splice(i, 1);
  return true;
}

function takeNumber(args: string[], name: string): number | undefined {
  const v = takeOption(args, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${name} must be a non-negative number, got ${v}`);
  return n;
}

async function main(argv: string[]): Promise<void> {
  const args = [...argv];
  const command = args.shift();
  // `--xen`: the lab of real Xen hosts under QEMU (lab/xen/cli.ts).
  if (args.includes("--xen")) {
    return xenMain([command ?? "", ...args.filter((a) => a !== "--xen")]);
  }
  const stateDir = path.resolve(takeOption(args, "--state-dir") ?? defaultStateDir());
  const noExtra = () => {
    if (args.length) throw new UsageError(`unexpected arguments: ${args.join(" ")}`);
  };
  switch (command) {
    case "up": {
      const opts = {
        hosts: takeNumber(args, "--hosts") ?? 1,
        tpm2: takeFlag(args, "--tpm2"),
        memoryMiB: takeNumber(args, "--memory-mib"),
        diskMiB: takeNumber(args, "--disk-mib"),
        managerReadyDelaySec: takeNumber(args, "--manager-delay-sec"),
        shutdownAckTimeoutSec: takeNumber(args, "--shutdown-timeout-sec"),
        firstPort: takeNumber(args, "--first-port"),
      };
      noExtra();
      const started = Date.now();
      const inventory = await labUp(stateDir, opts);
      for (const h of inventory.hosts) {
        console.log(
          `${h.name}  ssh -i ${h.privateKeyPath} -p ${h.port} ${h.user}@${h.host}  ${h.hostKeyFingerprint}`,
        );
      }
      console.log(
        `lab up: ${inventory.hosts.length} host(s) ready in ${((Date.now() - started) / 1000).toFixed(1)}s`,
      );
      console.log(`inventory: ${inventoryPath(stateDir)}`);
      return;
    }
    case "status": {
      noExtra();
      const hosts = labStatus(stateDir);
      if (hosts.length === 0) console.log("lab is down (no hosts)");
      for (const h of hosts) {
        console.log(
          `${h.name}  ${h.running ? "running" : "STOPPED"}  ${h.host}:${h.port}  underlay ${h.underlayIp}  ${h.domains} domain(s)`,
        );
        for (const v of h.vtpms) {
          const tcti = v.tpm === "2.0" ? `  tpm2-tools: -T swtpm:path=${v.server}` : "";
          console.log(`  vTPM ${v.domain}  TPM ${v.tpm}  server ${v.server}  ctrl ${v.ctrl}${tcti}`);
        }
        for (const g of h.guests) {
          const agent = g.agentPid ? `  tvd-agent pid ${g.agentPid}` : "";
          console.log(`  guest ${g.domain}  domid ${g.domid}  xenbus ${g.xenbus}${agent}`);
        }
        for (const n of h.netns) {
          console.log(
            `  netns ${n.domain}  pid ${n.pid}  ${n.vifs.join(" ")}  enter: nsenter -t ${n.pid} -n`,
          );
        }
      }
      return;
    }
    case "down":
      noExtra();
      await labDown(stateDir);
      console.log("lab down");
      return;
    case "reset":
      noExtra();
      await labReset(stateDir);
      console.log("lab reset: no domains, empty Xen directories on every host");
      return;
    case "fault": {
      const [hostName, kind] = args.splice(0, 2);
      const host = labHosts(stateDir).find((h) => h.name === hostName);
      if (!host) throw new UsageError(`no lab host named ${hostName ?? "(missing)"}`);
      switch (kind) {
        case "fail": {
          const match = takeOption(args, "--match");
          if (!match) throw new UsageError("fault fail needs --match <regex>");
          const count = takeNumber(args, "--count") ?? 1;
          noExtra();
          failNext(host, match, count);
          break;
        }
        case "latency": {
          const ms = takeNumber(args, "--ms");
          if (ms === undefined) throw new UsageError("fault latency needs --ms N");
          noExtra();
          setLatency(host, ms);
          break;
        }
        case "drop":
          noExtra();
          await dropConnections(host);
          break;
        case "fill-disk":
          noExtra();
          await fillDisk(host);
          break;
        case "clear":
          noExtra();
          await clearFaults(host);
          break;
        default:
          throw new UsageError(`unknown fault ${kind ?? "(missing)"}`);
      }
      console.log(`fault ${kind} set on ${hostName}`);
      return;
    }
    default:
      throw new UsageError(`unknown command ${command ?? "(none)"}`);
  }
}

main(process.argv.slice(2)).catch((err: Error) => {
  if (err instanceof UsageError) {
    console.error(`lab: ${err.message}\nusage: see the top of lab/cli.ts, or README.md "The local lab"`);
    process.exit(2);
  }
  console.error(`lab: ${err.message}`);
  process.exit(1);
});
