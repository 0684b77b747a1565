/**
 * xenstore-read | xenstore-write | xenstore-ls | xenstore-list | xenstore-rm, chosen by the name
 * the command was called by (argv[2], passed by the lab's wrapper). Runs under the host's lab lock.
 * The lab's tools normally reach the same code through its tool server (../xl/toolServer.ts);
 * this entry point is the client's fallback.
 */
import { runXenstore } from "./tool";

const out = runXenstore(process.argv[2], process.argv.slice(3));
process.stdout.write(out.stdout);
process.stderr.write(out.stderr);
process.exitCode = out.exitCode;
