/**
 * `node --require pulumi-tvd/lazy-typescript`: @pulumi/pulumi loads the TypeScript compiler
 * only when it is first used.
 *
 * Why: every `pulumi` operation starts the program and the dynamic provider as Node.js processes,
 * and @pulumi/pulumi's closure serializer requires its TypeScript shim at load time (index →
 * runtime → closure → parseFunction). That is about 0.25 s of CPU per process, more than a third
 * of loading @pulumi/pulumi, for a compiler that neither process runs: pulumi-tvd's resources
 * register their provider as written-out text (provider/dynamic.ts), and the dynamic provider
 * only evaluates that text. A program that does serialize a function (its own
 * `pulumi.dynamic.Resource`, a `serializeFunction` call) still gets the real compiler, loaded at
 * its first use.
 *
 * How: a hook on Node's CommonJS loader answers @pulumi/pulumi's `require` of its TypeScript shim
 * with a proxy that loads the shim on the first property read. Nothing else is touched, and
 * nothing is loaded from this package but this file (it is safe in NODE_OPTIONS for every Node.js
 * process of a pipeline: those that are not Pulumi's never require the shim).
 */
import { Module } from "node:module";
import * as path from "node:path";

/** The part of Node's CommonJS loader the hook wraps (internal, stable since Node 0.x). */
interface CommonJsLoader {
  _load(request: string, parent: NodeJS.Module | undefined, isMain: boolean): unknown;
}

const PULUMI_SDK_DIR = `${path.sep}node_modules${path.sep}@pulumi${path.sep}pulumi${path.sep}`;

/** Whether a `require(request)` from `parentFile` is @pulumi/pulumi's own TypeScript shim. */
export function isPulumiTypescriptShim(request: unknown, parentFile: unknown): boolean {
  // Node passes a null parent filename for code given with -e and for the REPL.
  return (
    typeof request === "string" &&
    typeof parentFile === "string" &&
    parentFile.includes(PULUMI_SDK_DIR) &&
    /(^|\/)typescript-shim(\.js)?$/.test(request)
  );
}

/**
 * An object that stands for the module `load()` returns and calls it on the first use. Every
 * operation a caller can make on a module's exports (read, `in`, keys, descriptors) goes to the
 * loaded module.
 */
export function lazyModule(load: () => object): object {
  let loaded: object | undefined;
  const real = (): object => (loaded ??= load());
  return new Proxy(
    {},
    {
      get: (_target, key) => Reflect.get(real(), key),
      has: (_target, key) => Reflect.has(real(), key),
      ownKeys: () => Reflect.ownKeys(real()),
      getOwnPropertyDescriptor: (_target, key) => {
        const descriptor = Reflect.getOwnPropertyDescriptor(real(), key);
        // A proxy may only report a property its (empty) target lacks as configurable.
        return descriptor && { ...descriptor, configurable: true };
      },
      getPrototypeOf: () => Reflect.getPrototypeOf(real()),
    },
  );
}

/** Installs the hook once per process; idempotent. */
export function installLazyTypescript(): void {
  const loader = Module as unknown as CommonJsLoader & { __tvdLazyTypescript?: true };
  if (loader.__tvdLazyTypescript) return;
  const load = loader._load;
  loader._load = function (this: unknown, request, parent, isMain) {
    if (isPulumiTypescriptShim(request, parent?.filename)) {
      return lazyModule(() => load.call(this, request, parent, isMain) as object);
    }
    return load.call(this, request, parent, isMain);
  };
  loader.__tvdLazyTypescript = true;
}

installLazyTypescript();
