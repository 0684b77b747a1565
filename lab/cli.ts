/**
 * npm run lab -- up --hosts N [--state-dir DIR] | status | down | reset
 */
import * as path from "node:path";
import { defaultStateDir, inventoryPath, labDown, labReset, labStatus, labUp } from "./lab";

function usage(): never {
  console.error(
    "usage: npm run lab -- up [--hosts N] [--state-dir DIR] | status | down | reset  [--state-dir DIR]",
  );
  process.exit(2);
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const value = args[i + 1];
  if (value === undefined || value.startsWith("--")) usage();
  args.splice(i, 2);
  return value;
}

async function main(argv: string[]): Promise<void> {
  const args = [...argv];
  const command = args.shift();
  const stateDir = path.resolve(option(args, "--state-dir") ?? defaultStateDir());
  switch (command) {
    case "up": {
      const hosts = Number(option(args, "--hosts") ?? "1");
      if (args.length) usage();
      const started = Date.now();
      const inventory = await labUp(stateDir, hosts);
      for (const h of inventory.hosts) {
        console.log(
          `${h.name}  ssh -i ${h.privateKeyPath} -p ${h.port} ${h.user}@${h.host}  ${h.hostKeyFingerprint}`,
        );
      }
      console.log(
        `lab up: ${inventory.hosts.length} host(s) in ${((Date.now() - started) / 1000).toFixed(1)}s`,
      );
      console.log(`inventory: ${inventoryPath(stateDir)}`);
      return;
    }
    case "status": {
      const hosts = labStatus(stateDir);
      if (hosts.length === 0) console.log("lab is down");
      for (const h of hosts) {
        console.log(`${h.name}  ${h.running ? "running" : "STOPPED"}  pid ${h.pid}  ${h.host}:${h.port}`);
      }
      return;
    }
    case "down":
      await labDown(stateDir);
      console.log("lab down");
      return;
    case "reset":
      labReset(stateDir);
      console.log("lab reset: every host's Xen directories are empty");
      return;
    default:
      usage();
  }
}

main(process.argv.slice(2)).catch((err: Error) => {
  console.error(`lab: ${err.message}`);
  process.exit(1);
});
