/** Entry point of the lab's `xl` (installed on each lab host as a wrapper that takes the host lock). */
import { injectedStderr } from "./faults";
import { managerReady, runXl } from "./xl";

const argv = process.argv.slice(2);
if (argv[0] === "__manager-ready") {
  managerReady(Number(argv[1]));
} else {
  const out = runXl(argv);
  process.stdout.write(out.stdout);
  // libxl logs to stderr before xl prints its result; an injected warning goes first too.
  process.stderr.write(injectedStderr(argv[0]) + out.stderr);
  process.exitCode = out.exitCode;
}
