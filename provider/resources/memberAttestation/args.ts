import { z } from "zod";
import { domainName } from "../../names";
import { connectionSchema } from "../../transport/connection";
import { unmarked } from "../../core/define";
import { vifName } from "../guest/args";
import { bridgeName } from "../tvdNetwork/args";
import { pcrIndexProblem, pcrValueProblem } from "./baseline";

const base64 = z
  .string()
  .min(1, "must not be empty")
  .regex(/^[A-Za-z0-9+/]+={0,2}$/, "must be base64: the AK's public part as its VtpmIdentity gives it");

/**
 * A PCR value of the baseline. A refresh reports a PCR that left the baseline as a drift marker
 * on its value (`<declared> (changed on the host: PCR 5 is ...)`), which the stored state then
 * holds: the declared value is what is validated.
 */
const pcrValue = z.preprocess((v) => unmarked(v) ?? v, z.string());

export const baselineSchema = z
  .strictObject({
    bank: z.enum(["sha1", "sha256"], { message: 'must be "sha1" or "sha256"' }),
    pcrs: z.record(z.string(), pcrValue),
    sources: z.record(z.string(), z.string().max(4096, "must be at most 4096 characters")).optional(),
  })
  .superRefine((b, ctx) => {
    const indexes = Object.keys(b.pcrs);
    if (!indexes.length)
      ctx.addIssue({ code: "custom", path: ["pcrs"], message: "must name at least one PCR, e.g. 4 and 5" });
    for (const index of indexes) {
      const problem = pcrIndexProblem(index) ?? pcrValueProblem(b.pcrs[index], b.bank);
      if (problem)
        ctx.addIssue({
          code: "custom",
          path: ["pcrs", index],
          message: `${JSON.stringify(b.pcrs[index])} ${problem}`,
        });
    }
  });

/**
 * The member's port on its TVD network (the one its MemberPort admits): a failed attestation puts
 * it back on the holding bridge before the step fails, so a member that no longer proves its
 * baseline is cut off at once, not at the next successful `up`.
 */
export const heldPortSchema = z
  .strictObject({
    /** The member's vif backend interface in dom0 (its Guest's `vifname`). */
    name: vifName,
    /** The TVD bridge the port may be taken from. */
    bridge: bridgeName,
    /** The TVD's holding bridge on this host, where the port is put. */
    holdingBridge: bridgeName,
  })
  .superRefine((p, ctx) => {
    if (p.bridge === p.holdingBridge)
      ctx.addIssue({
        code: "custom",
        path: ["holdingBridge"],
        message: `${p.holdingBridge} is the TVD bridge itself: give the TVD network's holdingBridge`,
      });
  });

/**
 * MemberAttestation inputs: which member (its guest domain on the dom0 of `connection`), the AK
 * its VtpmIdentity certified (only that AK's quotes count), and the baseline it must prove.
 */
export const memberAttestationSchema = z
  .strictObject({
    connection: connectionSchema,
    /** The member's guest domain, whose agent quotes its vTPM's PCRs (agent/PROTOCOL.md). */
    guest: domainName,
    /** The TPM version the VtpmIdentity certified. */
    tpmVersion: z.enum(["1.2", "2.0"], { message: 'must be "1.2" or "2.0"' }),
    /** The certified AK's public part, base64 (TPM_PUBKEY for 1.2, TPMT_PUBLIC for 2.0). */
    akPublic: base64,
    baseline: baselineSchema,
    /**
     * The member's port, held when its attestation fails.
     * @default - none: a failed attestation fails the step and moves no port
     */
    port: heldPortSchema.optional(),
    /**
     * How long to wait for the member's agent to quote.
     * @default - 60
     */
    readyTimeoutSec: z
      .number()
      .int("must be a whole number of seconds")
      .min(1, "must be at least 1 second")
      .max(3600, "must be at most 3600 seconds")
      .default(60),
  })
  .superRefine((v, ctx) => {
    if (v.tpmVersion === "1.2" && v.baseline.bank !== "sha1")
      ctx.addIssue({
        code: "custom",
        path: ["baseline", "bank"],
        message: `"${v.baseline.bank}" is not a bank of a TPM 1.2, which has sha1 alone: compute the baseline with bank "sha1"`,
      });
  });

export type MemberAttestationInputs = z.output<typeof memberAttestationSchema>;
export type BaselineInputs = z.output<typeof baselineSchema>;

/** The outputs beyond the inputs: what the last attestation proved. */
export interface MemberAttestationExtra {
  /** True when the last quote verified against the certified AK and matched the baseline. */
  readonly attested: boolean;
  /** The PCR values the quote proved, by index, lowercase hex (off the baseline when not attested). */
  readonly pcrs: Record<string, string>;
  /**
   * SHA-256 over the proved PCR values concatenated in ascending PCR order (the way TPM2_Quote's
   * pcrDigest is made with a SHA-256 signing scheme), lowercase hex.
   */
  readonly pcrDigest: string;
  /** When the quote was verified, ISO 8601 UTC. */
  readonly attestedAt: string;
  /**
   * Why the member is not admitted, naming each PCR and both values (or the check its quote
   * failed), and what became of its port; empty when it is.
   */
  readonly refusal: string;
}
