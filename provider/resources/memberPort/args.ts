import { z } from "zod";
import { domainName } from "../../names";
import { connectionSchema } from "../../transport/connection";
import { vifName } from "../guest/args";
import { pem } from "../memberIdentity/args";
import { bridgeName } from "../tvdNetwork/args";

/**
 * A TVD member's port and where it belongs: on the TVD bridge once the member is admitted, on the
 * holding bridge otherwise. `admission` is what the admission rests on (the member's attested PCR
 * digest): it exists only once the attestation passed, so the port cannot be admitted before.
 */
export const memberPortShape = z.strictObject({
  connection: connectionSchema,
  /** The member's vif backend interface in dom0 (its Guest's `vifname`). */
  port: vifName,
  /** The member's domain, whose guest owns the port. */
  domain: domainName,
  /** The TVD bridge an admitted port is on. */
  bridge: bridgeName,
  /** The TVD's holding bridge on this host, where a port that is not admitted stays. */
  holdingBridge: bridgeName,
  /** What the admission rests on, e.g. the PCR digest the member's attestation proved. */
  admission: z
    .string()
    .regex(/^[0-9a-f]{40,128}$/, "must be the member's attested PCR digest: 40 to 128 lowercase hex digits")
    .optional(),
  /**
   * When the attestation the admission rests on was made (MemberAttestation.attestedAt): each new
   * attestation places the port again, so a member whose port a failed attestation held rejoins
   * its TVD as soon as it proves its baseline again, without waiting for a refresh.
   * @default - none
   */
  attestedAt: z.iso
    .datetime({ message: "must be an ISO 8601 UTC time, as MemberAttestation.attestedAt gives it" })
    .optional(),
  /**
   * Whether the member is admitted now: false (its attestation failed since) puts the port back on
   * the holding bridge.
   * @default true
   */
  admitted: z.boolean().default(true),
  /**
   * Why the member is not admitted (MemberAttestation.refusal): with admitted false, the port is
   * held and the step fails with it, so the `up` names the PCR and both values.
   * @default - none
   */
  refusal: z.string().max(8192, "must be at most 8192 characters").optional(),
  /**
   * The TVD's CRL (TvdRevocationList.crlPem), handed to the member through its xenstore data path
   * (data/tvd/crl) while it is admitted, so that it rejects the certificates of members removed.
   * @default - none
   */
  crlPem: pem(/X509 CRL/, "a CRL")
    .max(4000, "must fit one xenstore node (4000 bytes); fewer revoked serials, or a new CA")
    .optional(),
});

export const memberPortSchema = memberPortShape.superRefine(
  (v, ctx) => {
    if (typeof v.bridge === "string" && v.bridge === v.holdingBridge)
      ctx.addIssue({
        code: "custom",
        path: ["holdingBridge"],
        message: `${v.holdingBridge} is the TVD bridge itself: give the TVD network's holdingBridge`,
      });
    if (v.admitted !== false && v.admission === undefined)
      ctx.addIssue({
        code: "custom",
        path: ["admission"],
        message:
          "is required to admit a member: give its MemberAttestation's pcrDigest, or admitted: false to hold its port",
      });
  },
  { when: () => true },
);

export type MemberPortInputs = z.output<typeof memberPortSchema>;
