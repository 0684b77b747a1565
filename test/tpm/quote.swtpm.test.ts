/**
 * Quotes taken live through the member agent from real TPMs (swtpm 1.2 and 2.0), verified by
 * provider/tpm against the pv-grub baseline `replayPcrs(pvGrubMeasurements(...))`.
 *
 * Each member's PCRs 4 and 5 get pv-grub's three extends for a known kernel (gzip, so measured
 * decompressed), command line and initrd; two members per TPM version, each with its own AK.
 *
 * The same run captures the fixtures of test/unit/quote.verify.test.ts: with
 * `TVD_WRITE_QUOTE_FIXTURES=1 npx jest test/tpm/quote.swtpm.test.ts` it writes
 * test/fixtures/quotes/tpm<version>-<member>.json (the boot files, the AK as reported, each
 * quote request with its nonce and the agent's answer).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { gzipSync } from "node:zlib";
import {
  checkPcrBaseline,
  makeQuoteRequest,
  parseReport,
  PcrBaselineError,
  pvGrubMeasurements,
  QuoteVerificationError,
  replayPcrs,
  verifyQuote,
  type BootMeasurementInput,
  type MemberReport,
  type PcrBank,
  type QuoteRequest,
} from "../../provider/tpm";
import { agent, requireAgent, startMember, type Member } from "../support/member";
import { extendPcr, run } from "../support/swtpm";

jest.setTimeout(120_000);

requireAgent();

const FIXTURES = path.join(__dirname, "../fixtures/quotes");
const PCRS = [4, 5];

/** The member's boot files: small stand-ins with a gzip kernel, as GRUB legacy would gunzip it. */
const BOOT: BootMeasurementInput = {
  kernel: gzipSync(Buffer.from("fixture vmlinuz: not a kernel, only bytes to measure\n".repeat(64)), {
    level: 9,
  }),
  cmdline: "root=/dev/xvda1 ro console=hvc0 tvd.member=fixture",
  initrd: Buffer.from("fixture initrd: cpio stand-in\n".repeat(32)),
};

const banksOf = (version: "1.2" | "2.0"): PcrBank[] => (version === "1.2" ? ["sha1"] : ["sha1", "sha256"]);

/** pv-grub's extends: each event into every bank, with that bank's digest of it. */
async function measureBoot(member: Member, boot: BootMeasurementInput): Promise<void> {
  const sha1 = pvGrubMeasurements(boot, "sha1");
  const sha256 = pvGrubMeasurements(boot, "sha256");
  for (let i = 0; i < sha1.length; i++) {
    await extendPcr(member.tpm, member.version, sha1[i].pcr, {
      sha1: sha1[i].digest,
      sha256: member.version === "2.0" ? sha256[i].digest : undefined,
    });
  }
}

interface Taken {
  readonly request: QuoteRequest;
  readonly quote: unknown;
}

async function quote(member: Member, bank: PcrBank): Promise<Taken> {
  const request = makeQuoteRequest({ tpm: member.version, pcrs: PCRS, bank });
  return { request, quote: JSON.parse(await agent(member, "quote", request)) };
}

describe.each(["1.2", "2.0"] as const)("quotes from a TPM %s through the agent", (version) => {
  const members: { name: string; member: Member; report: MemberReport; quotes: Taken[] }[] = [];

  beforeAll(async () => {
    for (const name of ["a", "b"]) {
      const member = await startMember(version);
      await measureBoot(member, BOOT);
      const report = parseReport(await agent(member, "report"));
      const quotes: Taken[] = [];
      for (const bank of banksOf(version)) quotes.push(await quote(member, bank));
      members.push({ name, member, report, quotes });
    }
  });

  afterAll(async () => {
    for (const m of members) await m.member.tpm.stop();
  });

  test("each member's quote verifies with its AK and proves the pv-grub baseline in each bank", () => {
    for (const { report, quotes } of members) {
      for (const { request, quote } of quotes) {
        const proved = verifyQuote({ ak: report.ak, request, quote });
        expect(proved).toMatchObject({ tpm: version, bank: request.bank });
        const baseline = replayPcrs(pvGrubMeasurements(BOOT, request.bank), request.bank);
        expect([...proved.pcrs.keys()]).toEqual(PCRS);
        expect(() => checkPcrBaseline(proved.pcrs, baseline)).not.toThrow();
      }
    }
  });

  test("a quote does not verify with the other member's AK", () => {
    const [a, b] = members;
    const { request, quote } = a.quotes[0];
    expect(() => verifyQuote({ ak: b.report.ak, request, quote })).toThrow(
      expect.objectContaining({ check: "signature" }) as unknown as Error,
    );
  });

  test("an answer to an earlier request does not pass for a new nonce (replay)", async () => {
    const [{ member, report, quotes }] = members;
    const old = quotes[0];
    const fresh = { ...old.request, nonce: makeQuoteRequest({ tpm: version, pcrs: PCRS }).nonce };
    expect(() => verifyQuote({ ak: report.ak, request: fresh, quote: old.quote })).toThrow(
      expect.objectContaining({ check: "nonce" }) as unknown as Error,
    );
    // The agent answers the new nonce, and that answer verifies.
    const answer = JSON.parse(await agent(member, "quote", fresh));
    expect(verifyQuote({ ak: report.ak, request: fresh, quote: answer }).pcrs.size).toBe(2);
  });

  test("a member that booted another kernel is named: PCR 4 left the baseline", async () => {
    const other = await startMember(version);
    try {
      await measureBoot(other, { ...BOOT, kernel: Buffer.from("another kernel") });
      const report = parseReport(await agent(other, "report"));
      const bank = banksOf(version)[banksOf(version).length - 1];
      const { request, quote: answer } = await quote(other, bank);
      const proved = verifyQuote({ ak: report.ak, request, quote: answer });
      const baseline = replayPcrs(pvGrubMeasurements(BOOT, bank), bank);
      let error: unknown;
      try {
        checkPcrBaseline(proved.pcrs, baseline);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(PcrBaselineError);
      expect((error as PcrBaselineError).departures).toEqual([
        {
          pcr: 4,
          expected: (baseline.get(4) as Buffer).toString("hex"),
          found: (proved.pcrs.get(4) as Buffer).toString("hex"),
        },
      ]);
    } finally {
      await other.tpm.stop();
    }
  });

  test("the agent refuses a request for a bank the TPM cannot quote", async () => {
    const [{ member, report }] = members;
    const request = { ...makeQuoteRequest({ tpm: version, pcrs: PCRS }), bank: "sha384" as PcrBank };
    const answer = await agent(member, "quote", request);
    expect(() => verifyQuote({ ak: report.ak, request, quote: answer })).toThrow(QuoteVerificationError);
    expect(JSON.parse(answer).error).toMatch(version === "1.2" ? /only sha1/ : /bank sha1 or sha256/);
  });

  afterAll(async () => {
    if (process.env.TVD_WRITE_QUOTE_FIXTURES !== "1") return;
    mkdirSync(FIXTURES, { recursive: true });
    const swtpm = (await run("swtpm", ["--version"])).stdout.trim();
    const files: string[] = [];
    for (const { name, report, quotes } of members) {
      const fixture = {
        captured: `${swtpm}; agent/bin/tvd-agent quote; test/tpm/quote.swtpm.test.ts`,
        tpm: version,
        member: name,
        boot: {
          kernel: BOOT.kernel.toString("base64"),
          cmdline: BOOT.cmdline,
          initrd: (BOOT.initrd as Buffer).toString("base64"),
        },
        ak: report.ak.bytes.toString("base64"),
        quotes,
      };
      const file = path.join(FIXTURES, `tpm${version}-${name}.json`);
      writeFileSync(file, JSON.stringify(fixture, null, 2));
      files.push(file);
    }
    // As `npm run lint` (prettier --check) wants them. Prettier 3 cannot run inside Jest's VM
    // (it imports its plugins dynamically), so its command line does it.
    await run(path.join(__dirname, "../../node_modules/.bin/prettier"), ["--write", ...files]);
  });
});
