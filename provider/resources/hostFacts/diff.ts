import { isDeepStrictEqual } from "node:util";
import type { HostFactsInputs } from "./args";

/**
 * Facts are read, never written, so no input change needs a replacement: a changed connection
 * or directory is an update that probes again.
 */
export function diffHostFacts(olds: HostFactsInputs, news: HostFactsInputs): { changes: boolean } {
  return {
    changes: !isDeepStrictEqual(olds.connection, news.connection) || olds.xenDataDir !== news.xenDataDir,
  };
}
