/**
 * Issue 12.5 on one lab host through the real CLI, with every kind of secret pulumi-tvd handles
 * (test/e2e/fixtures/secrets): a passphrase-protected SSH key and its passphrase, a vTPM
 * manager's owner and SRK auth, a TVD's CA keys, a member's host and X.509 keys in its seed.
 * After up and after destroy none is in plaintext anywhere but the 0600 file meant for it; the
 * same scanner, pointed at the same dom0, finds each leak planted there.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { LabHostRecord } from "../../lab/host";
import { startTestLab, type TestLab } from "../support/lab";
import { ArgvSampler, formatFinding, scanArgv, scanDom0, type SecretKind } from "../support/secrets";
import { disposeThen, expectExit, TestStack } from "./pulumi";

jest.setTimeout(10 * 60_000);

const fixture = path.join(__dirname, "fixtures", "secrets");
const A = "dom0-a";
const ownerAuth = randomBytes(20).toString("hex");
const srkAuth = randomBytes(20).toString("hex");
const keyPassphrase = `tvd-${randomBytes(12).toString("base64url")}`;
let lab: TestLab;
let host: LabHostRecord;
let stack: TestStack;

/**
 * The lab key, encrypted with a passphrase. ssh-keygen takes the new passphrase from an askpass
 * helper that reads it from its environment, so that it never is a process argument.
 */
function encryptedCopy(keyFile: string, passphrase: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "tvd-secrets-key-"));
  try {
    const key = path.join(dir, "id");
    const askpass = path.join(dir, "askpass");
    writeFileSync(key, readFileSync(keyFile), { mode: 0o600 });
    writeFileSync(askpass, '#!/bin/sh\nprintf "%s\\n" "$TVD_NEW_PASSPHRASE"\n', { mode: 0o700 });
    execFileSync("setsid", ["-w", "ssh-keygen", "-q", "-p", "-f", key], {
      env: {
        ...process.env,
        TVD_NEW_PASSPHRASE: passphrase,
        SSH_ASKPASS: askpass,
        SSH_ASKPASS_REQUIRE: "force",
        DISPLAY: ":0",
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    return readFileSync(key, "utf8");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

beforeAll(async () => {
  lab = await startTestLab({ hosts: 1 });
  host = lab.host(A);
  stack = await TestStack.create({
    programDir: fixture,
    config: {
      host: { value: host.host },
      port: { value: String(host.port) },
      hostKeyFingerprint: { value: host.hostKeyFingerprint },
      privateKey: { value: encryptedCopy(host.privateKeyPath, keyPassphrase), secret: true },
      passphrase: { value: keyPassphrase, secret: true },
      ownerAuth: { value: ownerAuth, secret: true },
      srkAuth: { value: srkAuth, secret: true },
    },
  });
  stack.secrets.watchDom0s(lab);
});

// dispose scans for secrets in plaintext and fails on a finding; the lab stops whatever it says.
afterAll(() => disposeThen(stack, () => lab?.stop()));

const sh = (script: string, ...args: string[]) => lab.check(A, script, ...args);
const kinds = () => {
  const count: Partial<Record<SecretKind, number>> = {};
  for (const s of stack.secrets.secrets.secrets) count[s.kind] = (count[s.kind] ?? 0) + 1;
  return count;
};

it("up: each secret is in its own 0600 file on the dom0, and in no other file", async () => {
  expectExit(await stack.up());
  const homes = [
    "/etc/xen/vtpmmgr.cfg",
    "/var/log/xen/console/guest-vtpmmgr.log",
    "/var/lib/xen/images/m1-seed.img",
  ];
  // The manager's console holds its auths too (Mini-OS prints its command line): made 0600.
  expect(await sh('stat -c %a "$@"', ...homes)).toBe("600\n600\n600\n");
  // What the scan tracks: the lab key (plain, and encrypted in config), the CA's X.509 and SSH
  // keys, the member's host and X.509 keys; the manager's two auths and the member's vTPM owner
  // and SRK auth; the key's and the stack's passphrases.
  expect(kinds()).toEqual({ "private key": 6, auth: 4, passphrase: 2 });
  // The manager's auths are at home in its config and console; the member's keys and vTPM auths
  // in its seed.
  expect(stack.secrets.secrets.secrets.flatMap((s) => [...s.homes]).sort()).toEqual(
    [homes[0], homes[0], homes[1], homes[1], homes[2], homes[2], homes[2], homes[2]].sort(),
  );
  expect(scanDom0(stack.secrets.secrets, lab.hosts).findings.map(formatFinding)).toEqual([]);
});

it("the same scan finds a secret planted in another file, a home not 0600, and one in a dom0 process's argv", async () => {
  const set = stack.secrets.secrets;
  await sh("cp -p /var/lib/xen/images/m1-seed.img /var/lib/xen/images/m1-seed.bak");
  await sh("chmod 0640 /etc/xen/vtpmmgr.cfg");
  await lab.writeFile(A, "/var/log/xen/leak.log", `started with owner_auth=${ownerAuth.toUpperCase()}\n`);
  try {
    const found = scanDom0(set, lab.hosts).findings;
    expect(found.map((f) => [f.where, f.secret.split(" (")[0]]).sort()).toEqual(
      [
        [
          `${A}:/etc/xen/vtpmmgr.cfg (mode 0640), the secret's own file but not 0600`,
          expect.stringMatching(/^auth /),
        ],
        [
          `${A}:/etc/xen/vtpmmgr.cfg (mode 0640), the secret's own file but not 0600`,
          expect.stringMatching(/^auth /),
        ],
        // The seed's copy holds the member's vTPM owner and SRK auth as well as its keys.
        [
          `${A}:/var/lib/xen/images/m1-seed.bak (mode 0600), not a file meant to hold it`,
          expect.stringMatching(/^auth /),
        ],
        [
          `${A}:/var/lib/xen/images/m1-seed.bak (mode 0600), not a file meant to hold it`,
          expect.stringMatching(/^auth /),
        ],
        [
          `${A}:/var/lib/xen/images/m1-seed.bak (mode 0600), not a file meant to hold it`,
          expect.stringMatching(/^private key /),
        ],
        [
          `${A}:/var/lib/xen/images/m1-seed.bak (mode 0600), not a file meant to hold it`,
          expect.stringMatching(/^private key /),
        ],
        [
          `${A}:/var/log/xen/leak.log (mode 0644), not a file meant to hold it`,
          expect.stringMatching(/^auth /),
        ],
      ].sort(),
    );
    for (const f of found) expect(formatFinding(f)).not.toMatch(new RegExp(`${ownerAuth}|${srkAuth}`, "i"));

    // A dom0 process is this machine's, in the host's namespaces: /proc shows its argv.
    const sampler = new ArgvSampler();
    const stop = sampler.start("a planted dom0 command");
    await sh('sleep 0.3 && echo "$1" >/dev/null', `srk_auth=${srkAuth}`);
    stop();
    const argv = scanArgv(set, sampler);
    expect(argv.length).toBeGreaterThan(0);
    for (const f of argv)
      expect(f.where).toMatch(/^pid \d+ \S+ argv\[\d+\] \(during a planted dom0 command\)$/);
  } finally {
    await sh(
      "rm -f /var/lib/xen/images/m1-seed.bak /var/log/xen/leak.log && chmod 0600 /etc/xen/vtpmmgr.cfg",
    );
  }
});

it("destroy, then the whole scan: state, outputs, events, files and argv hold no secret", async () => {
  expectExit(await stack.destroy());
  const { findings, figures } = await stack.secrets.finish();
  expect(findings.map(formatFinding)).toEqual([]);
  expect(figures).toMatchObject({ scans: 1, findings: 0, secretsTracked: 12 });
  for (const k of ["stateDocuments", "stateFiles", "outputs", "events", "dom0Files", "argvSamples"] as const)
    expect(figures[k]).toBeGreaterThan(0);
  // The Node SDK's debug echo of RegisterResource responses carries secret outputs in plaintext
  // (@pulumi/pulumi runtime/resource.js): the scan leaves only those events out. When an upgrade stops it, this
  // fails, and the exclusion in secrets.ts should go.
  expect(figures.upstreamDebugEventsWithSecrets).toBeGreaterThan(0);
});
