/**
 * xenstore-read | xenstore-write | xenstore-ls | xenstore-list | xenstore-rm: one call, its output
 * and exit code (main.ts prints them; the lab's tool server returns them to its client).
 */
import { loadTree, lookup, remove, renderLs, saveTree, write } from "./store";

export interface ToolOutput {
  stdout: string;
  stderr: string;
  exitCode: number;
}

class Failed extends Error {}

export function runXenstore(command: string | undefined, args: string[]): ToolOutput {
  let stdout = "";
  const fail = (message: string): never => {
    throw new Failed(message);
  };
  try {
    const tree = loadTree();
    switch (command) {
      case "xenstore-read": {
        if (!args.length) fail("Usage: xenstore-read [-h] key [...]");
        for (const p of args) {
          const node = lookup(tree, p);
          if (!node) fail(`xenstore-read: couldn't read path ${p}`);
          stdout += node!.value + "\n";
        }
        break;
      }
      case "xenstore-write": {
        if (args.length === 0 || args.length % 2) fail("Usage: xenstore-write [-h] key value [...]");
        for (let i = 0; i < args.length; i += 2) write(tree, args[i], args[i + 1]);
        saveTree(tree);
        break;
      }
      case "xenstore-ls": {
        const node = lookup(tree, args[0] ?? "/");
        if (!node) fail(`xenstore-ls: xs_directory (${args[0]}): No such file or directory`);
        stdout += renderLs(node!);
        break;
      }
      case "xenstore-list": {
        const node = lookup(tree, args[0] ?? "/");
        if (!node) fail(`xenstore-list: couldn't list path ${args[0]}`);
        for (const name of Object.keys(node!.children)) stdout += name + "\n";
        break;
      }
      case "xenstore-rm": {
        for (const p of args) {
          if (!remove(tree, p)) fail(`xenstore-rm: could not remove path ${p}`);
        }
        saveTree(tree);
        break;
      }
      default:
        fail(`unknown xenstore command ${command}`);
    }
  } catch (e) {
    // What a failing xenstore-* prints: the lines it wrote so far, then the message, exit 1.
    if (e instanceof Failed) return { stdout, stderr: e.message + "\n", exitCode: 1 };
    throw e;
  }
  return { stdout, stderr: "", exitCode: 0 };
}
