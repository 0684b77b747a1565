/**
 * Regression for issue 11, item 5: the library package held the lab. `npm pack` shipped
 * dist/lab and dist/bench (the xl emulator, the benchmarks) with the library, and building the
 * library ran the lab's libxlutil helper build, which needs libxen-dev. The library is now
 * index.ts, provider/ and constructs/ (tsconfig.build.json -> dist/); the lab and the
 * benchmarks build on their own (`npm run build:lab`, tsconfig.lab.json -> build/).
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";

const root = path.resolve(__dirname, "..", "..");

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { cwd: root, encoding: "utf8", maxBuffer: 64 << 20 });
}

/**
 * What the library may ship: its compiled entry points, package.json, the README, a licence, and
 * the member agent its seeds carry (built by agent/build) with its protocol.
 */
const LIBRARY_FILE =
  /^(dist\/(index|provider\/.+|constructs\/.+)\.(js|d\.ts)|agent\/bin\/tvd-agent|agent\/(PROTOCOL|README)\.md|package\.json|README\.md|LICENSE)$/;

describe("the library package holds only the library, not the lab (issue 11.5)", () => {
  let packed: string[];
  const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));

  beforeAll(() => {
    // scripts/setup builds the library; a checkout never built is built here (tsc only).
    if (!existsSync(path.join(root, "dist", "provider", "runtime.js")))
      run("npm", ["run", "--silent", "build"]);
    const [pack] = JSON.parse(run("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"]));
    packed = (pack.files as { path: string }[]).map((f) => f.path).sort();
  }, 180_000);

  it("npm pack ships index, provider/ and constructs/, and nothing of lab/, bench/ or test/", () => {
    expect(packed.filter((f) => !LIBRARY_FILE.test(f))).toEqual([]);
    expect(packed.filter((f) => /(^|\/)(lab|bench|test|examples|build)\//.test(f))).toEqual([]);
    expect(packed).toEqual(
      expect.arrayContaining([
        "package.json",
        "README.md",
        "dist/index.js",
        "dist/index.d.ts",
        "dist/provider/runtime.js",
        "dist/provider/runtime.d.ts",
        // Seeds carry it: a package without it cannot give members their agent.
        "agent/bin/tvd-agent",
      ]),
    );
    expect(packed.some((f) => /^dist\/constructs\/.+\.js$/.test(f))).toBe(true);
  });

  it("every entry point in package.json (main, types, exports) is in the package", () => {
    const targets: string[] = [pkg.main, pkg.types];
    for (const entry of Object.values(pkg.exports as Record<string, string | Record<string, string>>))
      targets.push(...(typeof entry === "string" ? [entry] : Object.values(entry)));
    for (const target of targets) expect(packed).toContain(path.posix.normalize(target));
  });

  it("the library build compiles nothing from lab/ or bench/ and runs no lab build (no libxen-dev)", () => {
    const tsc = path.join(root, "node_modules", ".bin", "tsc");
    const compiled = run(tsc, ["-p", "tsconfig.build.json", "--listFilesOnly"])
      .split("\n")
      .filter((f) => f.trim() !== "")
      .map((f) => path.relative(root, f.trim()))
      .filter((f) => !f.split(path.sep).includes("node_modules"));
    expect(compiled).toContain("index.ts");
    expect(compiled).toContain("provider/runtime.ts");
    expect(compiled.filter((f) => !/^(index\.ts|provider\/|constructs\/|package\.json$)/.test(f))).toEqual(
      [],
    );
    expect(pkg.scripts.build).not.toMatch(/build-xlcfg|gcc|tsconfig\.lab|\blab\b/);
  }, 60_000);
});
