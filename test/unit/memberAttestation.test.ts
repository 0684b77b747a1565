/**
 * Issue 16.1 and 16.2, the pure parts: the baseline as code (pvGrubBaseline, from files the
 * program declares, checked against PCR values computed here step by step with node:crypto, not
 * with provider/tpm/pvgrub.ts), and MemberAttestation's judgement of an agent's answer, over the
 * REAL quotes swtpm 1.2 and 2.0 made after pv-grub's extends (test/fixtures/quotes): admitted with
 * the baseline of the files it booted, refused with another kernel naming PCR 4 and both values,
 * refused with another member's AK naming the check; and how a refresh shows each as drift (a
 * marker on that PCR of `baseline`, or on `guest`), which check accepts back and diff applies in
 * place (an update that attests again).
 */
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { gzipSync } from "node:zlib";
import fc from "fast-check";
import { changesOf, markerOf, parseInputs } from "../../provider/core/define";
import { BaselineError, pvGrubBaseline } from "../../provider/resources/memberAttestation/baseline";
import {
  attestationDrift,
  definition,
  judgeQuote,
  unsettledAttestation,
  memberAttestationLifecycle,
  notAdmitted,
  pcrDigestOf,
} from "../../provider/resources/memberAttestation/provider";
import { loadQuoteFixtures } from "../support/quoteFixtures";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "tvd-baseline-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function file(bytes: Buffer): string {
  const p = path.join(dir, `f${files++}`);
  writeFileSync(p, bytes);
  return p;
}

// ---- PCR values computed independently --------------------------------------------------------

type Bank = "sha1" | "sha256";
const hash = (bank: Bank, bytes: Buffer) => createHash(bank).update(bytes).digest();
/** The PCR after extending each measured blob's hash in turn from zero. */
const chain = (bank: Bank, ...measured: Buffer[]) =>
  measured
    .reduce(
      (pcr, m) => hash(bank, Buffer.concat([pcr, hash(bank, m)])),
      Buffer.alloc(bank === "sha1" ? 20 : 32),
    )
    .toString("hex");

describe("pvGrubBaseline: the baseline from the files the program declares", () => {
  it("gives PCR 4 from the kernel's bytes and PCR 5 from the cmdline then the initrd, in either bank", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 4096 }),
        fc.option(fc.uint8Array({ maxLength: 4096 }), { nil: undefined }),
        fc.string({ maxLength: 80 }).filter((s) => !/\p{Cc}/u.test(s)),
        fc.constantFrom<Bank>("sha1", "sha256"),
        fc.boolean(),
        (kernelBytes, initrdBytes, cmdline, bank, gzip) => {
          // A gzip kernel is measured as GRUB legacy reads it: decompressed.
          const kernel = Buffer.concat([Buffer.from("\x7fELF"), Buffer.from(kernelBytes)]);
          const initrd = initrdBytes && Buffer.from(initrdBytes);
          const b = pvGrubBaseline({
            kernel: file(gzip ? gzipSync(kernel) : kernel),
            initrd: initrd && file(initrd),
            cmdline,
            bank,
          });
          expect(b.bank).toBe(bank);
          expect(b.pcrs).toEqual({
            "4": chain(bank, kernel),
            "5": chain(bank, Buffer.from(cmdline, "utf8"), initrd ?? Buffer.alloc(0)),
          });
        },
      ),
      { numRuns: 60 },
    );
  });

  it("keeps PCRs pinned by value (hex in any case, stored lowercase) and says what each PCR stands for", () => {
    const kernel = file(Buffer.from("kernel"));
    const b = pvGrubBaseline({ kernel, cmdline: "ro", pcrs: { 0: "AB".repeat(20), "7": "00".repeat(20) } });
    expect(Object.keys(b.pcrs)).toEqual(["0", "4", "5", "7"]);
    expect(b.pcrs["0"]).toBe("ab".repeat(20));
    expect(b.sources).toEqual({
      "0": "value pinned",
      "4": `kernel file ${kernel}`,
      "5": 'cmdline "ro" and no initrd',
      "7": "value pinned",
    });
  });

  it("changes when the kernel file's bytes change, and only PCR 4 does", () => {
    const a = pvGrubBaseline({ kernel: file(Buffer.from("kernel one")), cmdline: "ro" });
    const b = pvGrubBaseline({ kernel: file(Buffer.from("kernel two")), cmdline: "ro" });
    expect(a.pcrs["4"]).not.toBe(b.pcrs["4"]);
    expect(a.pcrs["5"]).toBe(b.pcrs["5"]);
  });

  it("refuses every problem at once, each naming the property, the value and the fix", () => {
    let error: BaselineError | undefined;
    try {
      pvGrubBaseline(
        {
          kernel: path.join(dir, "no-such-vmlinuz"),
          initrd: path.join(dir, "no-such-initrd"),
          cmdline: "ro\nquiet",
          bank: "sha384" as Bank,
          pcrs: { 24: "00".repeat(20), x: "00", 4: "00".repeat(20), 7: "zz" },
        },
        "measuredBoot",
      );
    } catch (e) {
      error = e as BaselineError;
    }
    expect(error).toBeInstanceOf(BaselineError);
    const text = error!.problems.join("\n");
    expect(text).toContain(
      `measuredBoot.kernel "${path.join(dir, "no-such-vmlinuz")}" cannot be read (ENOENT)`,
    );
    expect(text).toContain(
      `measuredBoot.initrd "${path.join(dir, "no-such-initrd")}" cannot be read (ENOENT)`,
    );
    expect(text).toMatch(/give the path, where Pulumi runs/);
    expect(text).toContain('measuredBoot.bank "sha384" is not a PCR bank: give "sha1" or "sha256"');
    expect(text).toContain("measuredBoot.cmdline");
    expect(text).toContain('measuredBoot.pcrs["24"] is not a PCR index: give a whole number from 0 to 23');
    expect(text).toContain('measuredBoot.pcrs["x"] is not a PCR index');
    expect(text).toContain(`measuredBoot.pcrs["4"] is pv-grub's own PCR`);
    expect(error!.problems).toHaveLength(7);
    // A bank that is known judges a pinned value by its size.
    expect(() =>
      pvGrubBaseline({
        kernel: file(Buffer.from("k")),
        cmdline: "",
        pcrs: { 7: "00".repeat(20) },
        bank: "sha256",
      }),
    ).toThrow(
      `baseline.pcrs["7"] "${"00".repeat(20)}" is not a sha256 PCR value: give 64 lowercase hex digits`,
    );
  });
});

// ---- the resource's check ------------------------------------------------------------------

const CONNECTION = {
  host: "dom0-a.example",
  user: "root",
  privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
  insecureSkipHostKeyVerification: true,
};
const GOOD = {
  connection: CONNECTION,
  guest: "red-01",
  tpmVersion: "1.2",
  akPublic: "AAEAAQ==",
  baseline: { bank: "sha1", pcrs: { "4": "44".repeat(20), "5": "55".repeat(20) } },
};

describe("MemberAttestation's check", () => {
  const check = (news: Record<string, unknown>) => memberAttestationLifecycle.check({}, news);

  it("accepts a baseline and fills the timeout in", async () => {
    const r = await check(GOOD);
    expect(r.failures).toBeUndefined();
    expect(r.inputs.readyTimeoutSec).toBe(60);
  });

  it("names each bad baseline property with the value and the fix", async () => {
    const r = await check({
      ...GOOD,
      baseline: { bank: "sha1", pcrs: { "4": "44".repeat(32), "99": "00".repeat(20) } },
    });
    expect(r.failures).toEqual(
      expect.arrayContaining([
        {
          property: "baseline.pcrs.4",
          reason: `"${"44".repeat(32)}" is not a sha1 PCR value: give 40 lowercase hex digits (20 bytes)`,
        },
        { property: "baseline.pcrs.99", reason: expect.stringContaining("is not a PCR index") },
      ]),
    );
    const tpm12 = await check({ ...GOOD, baseline: { bank: "sha256", pcrs: { "4": "44".repeat(32) } } });
    expect(tpm12.failures).toEqual([
      { property: "baseline.bank", reason: expect.stringContaining("is not a bank of a TPM 1.2") },
    ]);
    const empty = await check({ ...GOOD, baseline: { bank: "sha1", pcrs: {} } });
    expect(empty.failures).toEqual([
      { property: "baseline.pcrs", reason: expect.stringContaining("at least one PCR") },
    ]);
  });

  it("takes the member's port to hold on failure, and names a bad one with the value and the fix", async () => {
    const port = { name: "tvp-red-01", bridge: "tvd-red", holdingBridge: "tvh-red" };
    expect((await check({ ...GOOD, port })).failures).toBeUndefined();
    const r = await check({
      ...GOOD,
      port: { name: "eth0; reboot", bridge: "tvd-red", holdingBridge: "tvd-red" },
    });
    expect(r.failures).toEqual(
      expect.arrayContaining([
        { property: "port.name", reason: expect.stringContaining("must be an interface name") },
        {
          property: "port.holdingBridge",
          reason: "tvd-red is the TVD bridge itself: give the TVD network's holdingBridge",
        },
      ]),
    );
  });
});

// ---- judging real quotes --------------------------------------------------------------------

const FIXTURES = loadQuoteFixtures();
const CASES = FIXTURES.flatMap((f) => f.quotes.map((q) => [`${f.file} ${q.request.bank}`, f, q] as const));

describe.each(CASES)("a real quote, %s", (_label, f, q) => {
  const baselineOf = (kernel: Buffer) =>
    pvGrubBaseline({
      kernel: file(kernel),
      initrd: file(f.boot.initrd),
      cmdline: f.boot.cmdline,
      bank: q.request.bank,
    });
  const answer = JSON.stringify(q.quote);

  it("admits the member with the baseline of the files it booted; pcrDigest is SHA-256 of the values in order", () => {
    const baseline = baselineOf(f.boot.kernel);
    const outcome = judgeQuote(f.ak, q.request, answer, baseline);
    expect(outcome).toEqual({ ok: true, pcrs: baseline.pcrs });
    const values = Buffer.concat(["4", "5"].map((i) => Buffer.from(baseline.pcrs[i], "hex")));
    expect(pcrDigestOf(baseline.pcrs)).toBe(createHash("sha256").update(values).digest("hex"));
  });

  it("refuses another kernel naming PCR 4, both values and the kernel file declared; a refresh marks that PCR", () => {
    const declared = baselineOf(Buffer.concat([f.boot.kernel, Buffer.from("patched")]));
    const proved = baselineOf(f.boot.kernel).pcrs["4"];
    const outcome = judgeQuote(f.ak, q.request, answer, declared);
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(notAdmitted(f.member, outcome.failure, declared)).toBe(
      `member ${f.member} is not admitted to its TVD: PCR 4 is ${proved}, the baseline says ${declared.pcrs["4"]} ` +
        `(what the member booted differs from the ${declared.sources!["4"]} declared)`,
    );
    const v = {
      ...GOOD,
      guest: f.member,
      tpmVersion: f.tpm,
      akPublic: f.akBase64,
      baseline: declared,
      readyTimeoutSec: 60,
    };
    const seen = attestationDrift(v as never, outcome.failure);
    // Only PCR 4 is marked, with the declared value first, as every drift marker.
    expect(markerOf(seen.baseline!.pcrs["4"])).toEqual({ value: declared.pcrs["4"], what: "changed" });
    expect(seen.baseline!.pcrs["4"]).toContain(`PCR 4 is ${proved}`);
    expect(seen.baseline!.pcrs["5"]).toBe(declared.pcrs["5"]);
    // The state a refresh leaves parses back to the declared inputs, and up applies it in place.
    const refreshed = { ...v, ...seen };
    expect(changesOf(definition.changes, refreshed, v)).toEqual(new Map([["baseline", "inPlace"]]));
    // A create or update that found the same records it (attested false, what the quote proved)
    // and leaves the same drift, so the next up attests again: nothing re-admits it silently.
    expect(outcome.pcrs).toEqual(baselineOf(f.boot.kernel).pcrs);
    const made = {
      attested: false,
      pcrs: outcome.pcrs,
      refusal: notAdmitted(f.member, outcome.failure, declared),
    };
    expect(unsettledAttestation(v as never, made)).toEqual(seen);
    expect(unsettledAttestation(v as never, { attested: true, pcrs: outcome.pcrs })).toEqual({});
  });

  it("refuses a quote signed by another member's AK, naming the check; a refresh marks the guest", () => {
    const other = FIXTURES.find((o) => o.tpm === f.tpm && o.member !== f.member)!;
    const outcome = judgeQuote(other.ak, q.request, answer, baselineOf(f.boot.kernel));
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(notAdmitted(f.member, outcome.failure, baselineOf(f.boot.kernel))).toMatch(
      new RegExp(
        `^member ${f.member} is not admitted to its TVD: its quote does not verify against the AK its VtpmIdentity certified: quote: signature: `,
      ),
    );
    const seen = attestationDrift({ ...GOOD, guest: f.member } as never, outcome.failure);
    expect(markerOf(seen.guest)).toEqual({ value: f.member, what: "changed" });
    // Recorded by an up: no PCR was proved, and the guest is marked with the refusal.
    expect(outcome.pcrs).toBeUndefined();
    const refusal = notAdmitted(f.member, outcome.failure, baselineOf(f.boot.kernel));
    const unsettled = unsettledAttestation({ ...GOOD, guest: f.member } as never, {
      attested: false,
      pcrs: {},
      refusal,
    });
    expect(markerOf(unsettled.guest)).toEqual({ value: f.member, what: "changed" });
    expect(unsettled.guest).toContain("its quote does not verify");
  });
});

describe("MemberAttestation's stored state", () => {
  it("parses a baseline a refresh marked back to the declared values", () => {
    const marked = {
      ...GOOD,
      baseline: {
        ...GOOD.baseline,
        pcrs: {
          ...GOOD.baseline.pcrs,
          "5": `${"55".repeat(20)} (changed on the host: PCR 5 is ${"66".repeat(20)}, the baseline says ${"55".repeat(20)})`,
        },
      },
    };
    expect(parseInputs(definition, marked).baseline.pcrs).toEqual(GOOD.baseline.pcrs);
  });
});
