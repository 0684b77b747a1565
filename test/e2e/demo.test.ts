/**
 * The demo program (the root Pulumi.yaml: examples/two-tvds) on a 3-host lab through the real
 * CLI: it deploys, every member is admitted by attestation of its measured boot (issue 16.5), a
 * preview right after finds nothing to change, members of one TVD reach each other across hosts,
 * and the two TVDs, which even share a subnet, never see each other.
 */
import { createHash } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { gunzipSync } from "node:zlib";
import { startTestLab, type TestLab } from "../support/lab";
import { disposeThen, expectExit, TestStack } from "./pulumi";

jest.setTimeout(15 * 60_000);

const root = path.resolve(__dirname, "..", "..");
let lab: TestLab;
let stack: TestStack;
let programDir: string;

beforeAll(async () => {
  lab = await startTestLab({ hosts: 3 });
  // The demo project as a user has it: Pulumi.yaml with its program beside it.
  programDir = mkdtempSync(path.join(os.tmpdir(), "tvd-demo-"));
  cpSync(path.join(root, "examples", "two-tvds", "index.ts"), path.join(programDir, "index.ts"));
  // Its `main:` points into examples/; here the program sits beside Pulumi.yaml.
  const project = readFileSync(path.join(root, "Pulumi.yaml"), "utf8").replace(/^main: .*\n/m, "");
  writeFileSync(path.join(programDir, "Pulumi.yaml"), project);
  stack = await TestStack.create({
    programDir,
    config: { inventory: { value: path.join(lab.stateDir, "inventory.json") } },
  });
  stack.secrets.watchDom0s(lab); // issue 12.5: its files scanned after each operation
});

// dispose scans for secrets in plaintext and fails on a finding; the lab stops whatever it says.
const sha1 = (b: Buffer) => createHash("sha1").update(b).digest();
/** SHA-1 PCR after extending each blob's SHA-1 in turn from zero, as pv-grub does. */
const chain = (...measured: Buffer[]) =>
  measured.reduce((pcr, m) => sha1(Buffer.concat([pcr, sha1(m)])), Buffer.alloc(20));

/**
 * The PCR digest every member must prove: SHA-256 over PCR 4 || PCR 5 as pv-grub extends them
 * from the lab's boot files (the kernel decompressed; the command line, then the initrd),
 * computed here with node:crypto, not with the library.
 */
function expectedPcrDigest(): string {
  const boot = path.join(lab.stateDir, "boot");
  const kernel = gunzipSync(readFileSync(path.join(boot, "vmlinuz")));
  const cmdline = readFileSync(path.join(boot, "cmdline"), "utf8").trim();
  // The command line pv-grub measures is the menu.lst entry's, after the kernel's file name.
  expect(readFileSync(path.join(boot, "grub", "menu.lst"), "utf8")).toContain(
    `kernel /boot/vmlinuz ${cmdline}\n`,
  );
  const pcr4 = chain(kernel);
  const pcr5 = chain(Buffer.from(cmdline), readFileSync(path.join(boot, "initrd.img")));
  return createHash("sha256")
    .update(Buffer.concat([pcr4, pcr5]))
    .digest("hex");
}

afterAll(() =>
  disposeThen(stack, async () => {
    await lab?.stop();
    rmSync(programDir, { recursive: true, force: true });
  }),
);

it("deploys two TVDs, prints their summary, and a preview right after shows no changes", async () => {
  expectExit(await stack.up());
  const summary = (await stack.outputs()).summary as string;
  expect(summary).toMatch(/^TVD red \(bridge tvd-red, VXLAN \d+\): 6 members$/m);
  expect(summary).toMatch(/^TVD blue \(bridge tvd-blue, VXLAN \d+\): 3 members$/m);
  // Issue 13: every member's vTPM owned by the system, its EK and AK certified: the summary
  // prints the TPM version, both fingerprints and both certificate serials per member. Issue 16:
  // every member booted through pv-grub and admitted by a quote of the baseline: "attested" yes
  // and the PCR digest it proved.
  const headers = summary.split("\n").filter((l) => /^member\s/.test(l));
  expect(headers).toHaveLength(2);
  for (const header of headers)
    expect(header).toMatch(/\stpm\s+EK\s+AK\s+EK cert serial\s+AK cert serial\s+attested\s+PCR digest$/);
  const rows = summary.split("\n").filter((l) => /^(red|blue)-\S+\s/.test(l));
  expect(rows).toHaveLength(9);
  const digest = expectedPcrDigest();
  for (const row of rows)
    expect(row).toMatch(
      new RegExp(
        String.raw`\s1\.2\s+sha256:[0-9a-f]{16}\s+sha256:[0-9a-f]{16}\s+[0-9a-f]{32}\s+[0-9a-f]{32}` +
          String.raw`\s+yes\s+sha256:${digest.slice(0, 16)}$`,
      ),
    );
  // The members' outputs carry the whole digest.
  const members = (await stack.outputs()).members as Record<
    string,
    Record<string, { attestation?: { attested: boolean; pcrDigest: string } }>
  >;
  const attestations = Object.values(members).flatMap((tvd) => Object.values(tvd).map((m) => m.attestation));
  expect(attestations).toEqual(Array(9).fill({ attested: true, pcrDigest: digest }));
  expectExit(await stack.preview({ expectNoChanges: true }));
  // Regression (demo preview --refresh --diff showed every TvdNetwork's ports as changed): a
  // refresh right after a clean up finds nothing on any host, not even a moved output.
  const refreshed = await stack.preview({ refresh: true, expectNoChanges: true });
  expectExit(refreshed);
  expect(
    refreshed.steps
      .filter((s) => s.op !== "same" && (s.op !== "refresh" || s.changedOutputs.length > 0))
      .map((s) => `${s.name} ${s.op}: ${[...s.changedInputs, ...s.changedOutputs].join(", ")}`),
  ).toEqual([]);
});

it("rotation reissues every member's certificates in one up, and every member is attested again", async () => {
  type Serials = { x509Serial: string; tpm: { akCertSerial: string }; attestation: unknown };
  const serialsOf = async () =>
    Object.values((await stack.outputs()).members as Record<string, Record<string, Serials>>).flatMap((tvd) =>
      Object.values(tvd),
    );
  const before = await serialsOf();
  await stack.setConfig("rotation", "2");
  expectExit(await stack.up());
  const after = await serialsOf();
  expect(after).toHaveLength(9);
  for (const [i, m] of after.entries()) {
    expect(m.x509Serial).not.toBe(before[i].x509Serial);
    expect(m.tpm.akCertSerial).not.toBe(before[i].tpm.akCertSerial);
    expect(m.attestation).toEqual({ attested: true, pcrDigest: expectedPcrDigest() });
  }
  expectExit(await stack.preview({ expectNoChanges: true }));
});

it("keeps each TVD to itself, even on the same hosts and subnet", async () => {
  const members = (await stack.outputs()).members as Record<
    string,
    Record<string, { host: string; ip: string }>
  >;
  const addr = (tvd: string, m: string) => members[tvd][m].ip.split("/")[0];
  const blueWeb = members.blue["blue-web"];
  // Within a TVD, across hosts.
  expect(await lab.guestPings("dom0-a", "red-01", addr("red", "red-03"))).toBe(true);
  expect(await lab.guestPings(blueWeb.host, "blue-web", addr("blue", "blue-api"))).toBe(true);
  // Across TVDs: never, whichever host the other member is on.
  for (const red of ["red-01", "red-02", "red-03"]) {
    expect(await lab.guestPings(blueWeb.host, "blue-web", addr("red", red))).toBe(false);
  }
  expect(await lab.guestPings("dom0-b", "red-02", addr("blue", "blue-web"))).toBe(false);
});

it("destroys both TVDs", async () => {
  expectExit(await stack.destroy());
  for (const h of ["dom0-a", "dom0-b", "dom0-c"]) {
    expect((await lab.xl(h, "list")).stdout.trim().split("\n")).toHaveLength(2);
  }
});
