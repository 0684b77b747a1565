/**
 * A platform team's construct package, shipped and used as teams do (issue 15.3): pulumi-tvd's
 * tarball (packed by the e2e global setup) and @acme/tvd-three-tier's (`npm pack` of
 * examples/team-package, which builds it) sit next to an application team's program
 * (examples/team-package/app), which depends on both tarballs as ordinary dependencies; `npm
 * install` puts them in its node_modules (from npm's cache where it can). The real Pulumi CLI
 * deploys the program's `small` three-tier application onto a 2-host lab, the hosts are asked what
 * runs there, and destroy leaves nothing of it but the archived vTPM images.
 */
import { existsSync, lstatSync, readFileSync, rmSync } from "node:fs";
import * as path from "node:path";
import { runChecked } from "../../lab/exec";
import { SEEDED_IMAGES_LISTING, startTestLab, type TestLab } from "../support/lab";
import { consumerNodeModules } from "./consumer";
import { disposeThen, expectExit, TestStack } from "./pulumi";

jest.setTimeout(10 * 60_000);

const repoRoot = path.resolve(__dirname, "..", "..");
const teamPackage = path.join(repoRoot, "examples", "team-package");
const HOSTS = ["dom0-a", "dom0-b"];
/** The small preset's members, each tier's first member on another host (web, app, db in turn). */
const PLACED: Record<string, string[]> = {
  "dom0-a": ["shopdev-db-1", "shopdev-web-1"],
  "dom0-b": ["shopdev-app-1"],
};
let lab: TestLab;
let stack: TestStack;
let installSec: number;

beforeAll(async () => {
  lab = await startTestLab({ hosts: HOSTS.length });
  stack = await TestStack.create({
    programDir: path.join(teamPackage, "app"),
    stackName: "dev",
    config: { inventory: { value: path.join(lab.stateDir, "inventory.json") } },
  });
  stack.secrets.watchDom0s(lab); // issue 12.5: its files scanned after each operation
  // The tarballs where the program's package.json expects them: next to the program.
  const version = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")).version as string;
  const libraryTarball = path.join(path.dirname(consumerNodeModules()), `pulumi-tvd-${version}.tgz`);
  await runChecked(["cp", libraryTarball, stack.workDir]);
  await runChecked(["npm", "pack", "--silent", "--pack-destination", stack.workDir], { cwd: teamPackage });
  // Installed by npm as a user's project is, not linked to the e2e consumer's node_modules.
  rmSync(path.join(stack.programDir, "node_modules"));
  const started = Date.now();
  await runChecked(["npm", "install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], {
    cwd: stack.programDir,
  });
  installSec = (Date.now() - started) / 1000;
});

// dispose scans for secrets in plaintext and fails on a finding; the lab stops whatever it says.
afterAll(() => disposeThen(stack, () => lab?.stop()));

async function sh(host: string, script: string, ...args: string[]): Promise<string> {
  return lab.check(host, script, ...args);
}

it("the program has both packages installed from their tarballs", () => {
  const modules = path.join(stack.programDir, "node_modules");
  const team = JSON.parse(readFileSync(path.join(modules, "@acme/tvd-three-tier/package.json"), "utf8"));
  expect(team).toMatchObject({ name: "@acme/tvd-three-tier", version: "1.0.0" });
  // Real directories unpacked by npm, holding what `files` ships: compiled JS and declarations.
  expect(lstatSync(path.join(modules, "@acme/tvd-three-tier")).isSymbolicLink()).toBe(false);
  expect(lstatSync(path.join(modules, "pulumi-tvd")).isSymbolicLink()).toBe(false);
  expect(existsSync(path.join(modules, "@acme/tvd-three-tier/dist/index.d.ts"))).toBe(true);
  expect(existsSync(path.join(modules, "@acme/tvd-three-tier/src"))).toBe(false);
  // One pulumi-tvd and one @pulumi/pulumi, shared by the program and the team's package.
  expect(existsSync(path.join(modules, "@acme/tvd-three-tier/node_modules"))).toBe(false);
  console.log(`npm install of the program: ${installSec.toFixed(1)} s`);
});

it("pulumi up brings the small preset's three members up with their vTPMs, named and sized by the policy", async () => {
  expectExit(await stack.up());
  for (const h of HOSTS) {
    const expected = PLACED[h].flatMap((m) => [m, `${m}-vtpm`]).concat("vtpmmgr");
    expect(await lab.domainNames(h)).toEqual(expected.sort());
    // `xl list` on the dom0: every domain there with the preset's memory (vTPMs 8 MiB).
    const memory = Object.fromEntries(
      [...(await lab.xl(h, "list")).stdout.matchAll(/^(\S+)\s+\d+\s+(\d+)\s+\d+\s+[-a-z]{6}/gm)].map((m) => [
        m[1],
        Number(m[2]),
      ]),
    );
    for (const m of PLACED[h]) {
      expect(memory[m]).toBe(m.includes("-db-") ? 128 : 64);
      expect(memory[`${m}-vtpm`]).toBe(8);
    }
  }
  // The preset's sizes in the xl configs it wrote, and its 8 MiB vTPM images.
  expect(await sh("dom0-a", "cat /etc/xen/shopdev-db-1.cfg")).toMatch(/^memory\s*=\s*128$/m);
  expect(await sh("dom0-b", "cat /etc/xen/shopdev-app-1.cfg")).toMatch(/^memory\s*=\s*64$/m);
  expect(await sh("dom0-a", 'stat -c %s "$1"', "/var/lib/xen/vtpm/shopdev-web-1-vtpm.img")).toBe("8388608\n");
  expect(await sh("dom0-b", "ip -o link show master tvd-shopdev")).toMatch(/vx\d+/);

  const out = await stack.outputs();
  expect(out.tvd).toBe("shopdev");
  expect(out.tiers).toEqual({ web: ["shopdev-web-1"], app: ["shopdev-app-1"], db: ["shopdev-db-1"] });
  const members = out.members as Record<string, { host: string; ip: string; tpm?: { ekCertSerial: string } }>;
  expect(members["shopdev-app-1"]).toMatchObject({ host: "dom0-b", ip: "10.60.0.40/24" });
  // Each member's vTPM owned and its EK certified by the TVD's CA.
  for (const m of Object.values(members)) expect(m.tpm?.ekCertSerial).toMatch(/^[0-9a-f]+$/);
  // The tiers reach each other on the TVD's network, across hosts.
  expect(await lab.guestPings("dom0-a", "shopdev-web-1", "10.60.0.40")).toBe(true);
  expectExit(await stack.preview({ expectNoChanges: true }));
});

it("pulumi destroy leaves no domain, config, disk or bridge of it; only the vTPM images, archived", async () => {
  expectExit(await stack.destroy());
  for (const h of HOSTS) {
    expect(await lab.domainNames(h)).toEqual([]);
    expect(await sh(h, "ls -A /etc/xen")).toBe("");
    expect(await sh(h, "ls -A /var/lib/xen/images")).toBe(SEEDED_IMAGES_LISTING);
    expect(await sh(h, "ls -A /var/lib/xen/vtpm")).toBe("");
    expect(await sh(h, "ip -o link show | grep -c tvd-shopdev || true")).toBe("0\n");
    expect(await lab.archivedFiles(h)).toEqual(
      PLACED[h]
        .map((m) => `${m}-vtpm.img`)
        .concat("vtpmmgr.img")
        .sort(),
    );
  }
});
