/**
 * A consumer project that installs pulumi-tvd from its packed tarball, exactly as a user's
 * project does; e2e programs link to its node_modules. Built once per test run (global setup).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { runChecked } from "../../lab/exec";

/** The checkout: found upwards, as this file runs from test/e2e (jest) or build/test/e2e (the bench). */
function findRepoRoot(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "package.json"))) return dir;
  }
  throw new Error(`no package.json above ${__dirname}`);
}

const repoRoot = findRepoRoot();
const consumerDir = path.join(repoRoot, "test", ".work", "consumer");

export function consumerNodeModules(): string {
  return path.join(consumerDir, "node_modules");
}

/**
 * NODE_OPTIONS for every program and dynamic-provider process of a run: the caller's own, and
 * the installed package's `pulumi-tvd/lazy-typescript` preload (README, "Large stacks"), found
 * through the package's exports as a user's `--require pulumi-tvd/lazy-typescript` finds it.
 */
export function withLazyTypescript(nodeOptions: string | undefined): string {
  const preload = require.resolve("pulumi-tvd/lazy-typescript", { paths: [consumerDir] });
  return [nodeOptions, `--require=${preload}`].filter(Boolean).join(" ");
}

/**
 * The environment of a Pulumi CLI run against a local file backend in `workDir` (its state in
 * `state`, the CLI's home in `home`): no update check, no plugin download, no prompt, no colour.
 * `passphrase` encrypts a throwaway test or bench stack's secrets.
 */
export function localBackendEnv(workDir: string, passphrase: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PULUMI_HOME: path.join(workDir, "home"),
    PULUMI_BACKEND_URL: `file://${path.join(workDir, "state")}`,
    PULUMI_CONFIG_PASSPHRASE: passphrase,
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_SKIP_CONFIRMATIONS: "true",
    PULUMI_DIY_BACKEND_NO_LEGACY_WARNING: "true",
    PULUMI_ENABLE_STREAMING_JSON_PREVIEW: "true",
    NO_COLOR: "1",
  };
}

export async function buildConsumer(): Promise<void> {
  // Two projects' global setups (e2e, xen) need it; they run in one process, once per run.
  if (process.env.TVD_CONSUMER_BUILT === "1") return;
  await runChecked(["npm", "run", "--silent", "build"], { cwd: repoRoot });
  rmSync(consumerDir, { recursive: true, force: true });
  mkdirSync(consumerDir, { recursive: true });
  const packed = await runChecked(["npm", "pack", "--silent", "--pack-destination", consumerDir], {
    cwd: repoRoot,
  });
  const tarball = path.join(consumerDir, packed.stdout.trim().split("\n").pop()!);
  const pulumiVersion = JSON.parse(
    readFileSync(path.join(repoRoot, "node_modules/@pulumi/pulumi/package.json"), "utf8"),
  ).version as string;
  writeFileSync(
    path.join(consumerDir, "package.json"),
    JSON.stringify(
      {
        name: "tvd-e2e-consumer",
        private: true,
        dependencies: { "@pulumi/pulumi": pulumiVersion, "pulumi-tvd": `file:${tarball}` },
      },
      null,
      2,
    ),
  );
  await runChecked(["npm", "install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"], {
    cwd: consumerDir,
  });
  process.env.TVD_CONSUMER_BUILT = "1";
}
