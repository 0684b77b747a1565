/**
 * xenstore-read | xenstore-write | xenstore-ls | xenstore-list | xenstore-rm, chosen by the name
 * the command was called by (argv[2], passed by the lab's wrapper). Runs under the host's lab lock.
 */
import { loadTree, lookup, remove, renderLs, saveTree, write } from "./store";

function fail(message: string): never {
  process.stderr.write(message + "\n");
  process.exit(1);
}

function main(command: string, args: string[]): void {
  const tree = loadTree();
  switch (command) {
    case "xenstore-read": {
      if (!args.length) fail("Usage: xenstore-read [-h] key [...]");
      for (const p of args) {
        const node = lookup(tree, p);
        if (!node) fail(`xenstore-read: couldn't read path ${p}`);
        process.stdout.write(node.value + "\n");
      }
      return;
    }
    case "xenstore-write": {
      if (args.length === 0 || args.length % 2) fail("Usage: xenstore-write [-h] key value [...]");
      for (let i = 0; i < args.length; i += 2) write(tree, args[i], args[i + 1]);
      saveTree(tree);
      return;
    }
    case "xenstore-ls": {
      const node = lookup(tree, args[0] ?? "/");
      if (!node) fail(`xenstore-ls: xs_directory (${args[0]}): No such file or directory`);
      process.stdout.write(renderLs(node));
      return;
    }
    case "xenstore-list": {
      const node = lookup(tree, args[0] ?? "/");
      if (!node) fail(`xenstore-list: couldn't list path ${args[0]}`);
      for (const name of Object.keys(node.children)) process.stdout.write(name + "\n");
      return;
    }
    case "xenstore-rm": {
      for (const p of args) {
        if (!remove(tree, p)) fail(`xenstore-rm: could not remove path ${p}`);
      }
      saveTree(tree);
      return;
    }
    default:
      fail(`unknown xenstore command ${command}`);
  }
}

main(process.argv[2], process.argv.slice(3));
