import { readFileSync } from "node:fs";
import * as path from "node:path";

/** This package's version, recorded in every resource's outputs as `providerVersion`. */
export const providerVersion: string = (() => {
  // Works from the TypeScript sources (tests) and from dist/ (installed package) alike.
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8"));
      if (pkg.name === "pulumi-tvd") return String(pkg.version);
    } catch {
      // not here; keep walking up
    }
  }
  return "unknown";
})();
