/**
 * The real quotes of test/fixtures/quotes: what swtpm 1.2 and 2.0 made through the member agent
 * after pv-grub's extends (captured by test/tpm/quote.swtpm.test.ts), two members per version,
 * each with the boot it measured, its AK and its quotes with the requests they answer.
 */
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import {
  parseTpm12PubKey,
  parseTpm2Public,
  type BootMeasurementInput,
  type QuoteRequest,
  type TpmPublicKey,
} from "../../provider/tpm";

export interface QuoteFixture {
  readonly file: string;
  readonly tpm: "1.2" | "2.0";
  readonly member: string;
  readonly boot: BootMeasurementInput & { readonly initrd: Buffer };
  /** The AK's public part as the agent reports it (TPM_PUBKEY or TPMT_PUBLIC), base64. */
  readonly akBase64: string;
  readonly ak: TpmPublicKey;
  readonly quotes: readonly { readonly request: QuoteRequest; readonly quote: Record<string, unknown> }[];
}

const DIR = path.join(__dirname, "../fixtures/quotes");

export function loadQuoteFixtures(): QuoteFixture[] {
  return readdirSync(DIR)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((file) => {
      const raw = JSON.parse(readFileSync(path.join(DIR, file), "utf8"));
      const akBytes = Buffer.from(raw.ak, "base64");
      return {
        file,
        tpm: raw.tpm,
        member: raw.member,
        boot: {
          kernel: Buffer.from(raw.boot.kernel, "base64"),
          cmdline: raw.boot.cmdline,
          initrd: Buffer.from(raw.boot.initrd, "base64"),
        },
        akBase64: raw.ak,
        ak: raw.tpm === "1.2" ? parseTpm12PubKey(akBytes) : parseTpm2Public(akBytes),
        quotes: raw.quotes,
      };
    });
}
