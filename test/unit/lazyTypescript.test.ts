/**
 * `pulumi-tvd/lazy-typescript` (provider/lazyTypescript.ts): with it, loading @pulumi/pulumi no
 * longer loads the TypeScript compiler, and Pulumi's closure serializer, which does use it, makes
 * the same text as without it. The preload runs in real Node.js processes against this checkout's
 * @pulumi/pulumi, as a pipeline's NODE_OPTIONS runs it.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as ts from "typescript";
import { isPulumiTypescriptShim, lazyModule } from "../../provider/lazyTypescript";

const repoRoot = path.resolve(__dirname, "..", "..");
let dir: string;
let preload: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "tvd-lazy-ts-"));
  const source = readFileSync(path.join(repoRoot, "provider", "lazyTypescript.ts"), "utf8");
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: {
      module: ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2022,
      esModuleInterop: true,
    },
  });
  preload = path.join(dir, "lazyTypescript.js");
  writeFileSync(preload, outputText);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Runs a script in a Node.js process from the checkout (so that it finds @pulumi/pulumi), with
 * or without the preload, and returns what it printed as JSON.
 */
function inNode(script: string, withPreload: boolean): Record<string, unknown> {
  const file = path.join(dir, `script-${withPreload}.js`);
  writeFileSync(file, script);
  const out = execFileSync(process.execPath, [...(withPreload ? ["--require", preload] : []), file], {
    cwd: repoRoot,
    env: { ...process.env, NODE_PATH: path.join(repoRoot, "node_modules"), NODE_OPTIONS: "" },
    encoding: "utf8",
  });
  return JSON.parse(out.trim().split("\n").pop()!) as Record<string, unknown>;
}

const typescriptLoaded = `Object.keys(require.cache).some((f) => /node_modules\\/typescript\\/lib\\/typescript\\.js$/.test(f))`;

const SERIALIZE = `
const pulumi = require("@pulumi/pulumi");
const loadedAtStart = ${typescriptLoaded};
const factor = 3;
class Base { scale(x) { return x * factor; } }
class Derived extends Base { scale(x) { return super.scale(x) + 1; } }
const handler = { async create(inputs) { return { id: "x", outs: { n: new Derived().scale(inputs.n) } }; } };
pulumi.runtime.serializeFunction(() => handler, { isFactoryFunction: true }).then((s) => {
  console.log(JSON.stringify({ loadedAtStart, loadedAfter: ${typescriptLoaded}, text: s.text }));
});
`;

describe("loading @pulumi/pulumi under the preload", () => {
  it("does not load the TypeScript compiler; without the preload it does", () => {
    const without = inNode(
      `require("@pulumi/pulumi"); console.log(JSON.stringify({ loaded: ${typescriptLoaded} }));`,
      false,
    );
    const withIt = inNode(
      `require("@pulumi/pulumi"); console.log(JSON.stringify({ loaded: ${typescriptLoaded} }));`,
      true,
    );
    expect(without.loaded).toBe(true);
    expect(withIt.loaded).toBe(false);
  });

  it("Pulumi's closure serializer loads it on first use and makes the same text as without the preload", () => {
    const without = inNode(SERIALIZE, false);
    const withIt = inNode(SERIALIZE, true);
    expect(withIt.loadedAtStart).toBe(false);
    expect(withIt.loadedAfter).toBe(true);
    // A class with `super` goes through the serializer's TypeScript rewrite of the method.
    expect(String(without.text)).toContain("super");
    expect(withIt.text).toBe(without.text);
  });
});

describe("isPulumiTypescriptShim", () => {
  const sdk = path.join("/p", "node_modules", "@pulumi", "pulumi");
  it.each([
    ["../../typescript-shim", path.join(sdk, "runtime", "closure", "parseFunction.js"), true],
    ["./typescript-shim", path.join(sdk, "tsutils.js"), true],
    ["./typescript-shim.js", path.join(sdk, "tsutils.js"), true],
    // Anyone else's TypeScript, or a shim of the same name outside the SDK, loads as usual.
    ["typescript", path.join(sdk, "typescript-shim.js"), false],
    ["./typescript-shim", path.join("/p", "node_modules", "other", "index.js"), false],
    ["../../typescript-shim", path.join("/p", "src", "@pulumi", "pulumi", "x.js"), false],
    ["./typescript-shimmer", path.join(sdk, "tsutils.js"), false],
    // Node gives a null parent filename for -e code and the REPL.
    ["./typescript-shim", null, false],
    ["./typescript-shim", undefined, false],
  ])("%s from %s: %s", (request, parent, expected) => {
    expect(isPulumiTypescriptShim(request, parent)).toBe(expected);
  });
});

describe("lazyModule", () => {
  it("loads nothing until used, then once, and answers every question as the module", () => {
    let loads = 0;
    class Real {
      kind = "real";
      static of = 1;
    }
    const real = Object.assign(Object.create(Real.prototype) as object, { a: 1, b: { c: 2 } });
    const lazy = lazyModule(() => {
      loads++;
      return real;
    }) as Record<string, unknown>;
    expect(loads).toBe(0);
    expect(lazy.a).toBe(1);
    expect(lazy.b).toBe((real as { b: unknown }).b);
    expect("a" in lazy).toBe(true);
    expect("z" in lazy).toBe(false);
    expect(Object.keys(lazy)).toEqual(["a", "b"]);
    expect({ ...lazy }).toEqual({ a: 1, b: { c: 2 } });
    expect(Object.getOwnPropertyDescriptor(lazy, "a")).toMatchObject({ value: 1, enumerable: true });
    expect(Object.getPrototypeOf(lazy)).toBe(Real.prototype);
    expect(loads).toBe(1);
  });
});
