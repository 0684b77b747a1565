/**
 * A TVD's certificate revocation list (RFC 5280 section 5): the serials of member certificates the
 * TVD's CA issued and no longer stands behind (a member removed, or its certificates reissued).
 * node-forge writes no CRLs and node none at all, so the DER is built here with forge's ASN.1
 * writer and signed with node's crypto (RSASSA-PKCS1-v1_5, SHA-256, the CA's key). The issuer is
 * the CA certificate's own subject, byte for byte, and the authority key identifier its subject
 * key identifier, so that OpenSSL (`verify -crl_check`) and TLS stacks match the CRL to the CA.
 * Runs where Pulumi runs, never on a dom0.
 */
import { sign, X509Certificate } from "node:crypto";
import forge from "node-forge";

const { asn1 } = forge;
const DAY_MS = 24 * 60 * 60 * 1000;
const SHA256_WITH_RSA = "1.2.840.113549.1.1.11";
const CRL_NUMBER = "2.5.29.20";
const AUTHORITY_KEY_ID = "2.5.29.35";
const REASON_CODE = "2.5.29.21";
/** CRLReason certificateHold (RFC 5280 5.3.1): suspended, and taken off a later list to restore it. */
const CERTIFICATE_HOLD = 6;

export interface RevokedCertificate {
  /** Lowercase hex, as the certificates' serials are kept (MemberIdentity.x509Serial). */
  readonly serial: string;
  /** When it was revoked, ISO 8601. */
  readonly revokedAt: string;
  /**
   * "certificateHold" for a suspension (a member failing its attestation), which a later list
   * lifts by leaving the serial out.
   * @default - none: revoked for good, no reason given
   */
  readonly reason?: "certificateHold";
}

export interface CrlRequest {
  readonly caCertPem: string;
  readonly caKeyPem: string;
  readonly revoked: readonly RevokedCertificate[];
  /** The CRL's number: one more for each new list, so a member can tell the newer one. */
  readonly crlNumber: number;
  /** How long members may rely on it before they must have a newer one. */
  readonly validityDays: number;
  /** @default - now */
  readonly thisUpdate?: Date;
}

const seq = (value: forge.asn1.Asn1[]) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, value);
const oid = (o: string) =>
  asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(o).getBytes());
const octets = (bytes: string) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, bytes);

/** A positive INTEGER from hex (a leading 00 when its top bit is set, as DER wants). */
function integerOfHex(hex: string): forge.asn1.Asn1 {
  if (!/^(?:[0-9a-f]{2})+$/.test(hex))
    throw new Error(`serial ${JSON.stringify(hex)} must be lowercase hex bytes`);
  const bytes = Buffer.from(hex, "hex");
  const body = bytes[0] & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, body.toString("binary"));
}

/** A whole number as hex of whole bytes. */
function evenHex(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`crlNumber ${n} must be a whole number >= 0`);
  const hex = n.toString(16);
  return hex.length % 2 ? `0${hex}` : hex;
}

/** UTCTime until 2049, GeneralizedTime after (RFC 5280 4.1.2.5). */
function time(d: Date): forge.asn1.Asn1 {
  return d.getUTCFullYear() < 2050
    ? asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(d))
    : asn1.create(asn1.Class.UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(d));
}

function extension(id: string, value: forge.asn1.Asn1): forge.asn1.Asn1 {
  return seq([oid(id), octets(asn1.toDer(value).getBytes())]);
}

/** The CA certificate's subject (DER, as it is in the certificate) and its subject key identifier. */
function issuerOf(caCertPem: string): { subject: forge.asn1.Asn1; keyId?: string } {
  const der = Buffer.from(new X509Certificate(caCertPem).raw).toString("binary");
  const tbs = (asn1.fromDer(der).value as forge.asn1.Asn1[])[0].value as forge.asn1.Asn1[];
  // tbsCertificate: [0] version, serial, signature, issuer, validity, subject, ...
  const subject = tbs[0].tagClass === asn1.Class.CONTEXT_SPECIFIC ? tbs[5] : tbs[4];
  const cert = forge.pki.certificateFromPem(caCertPem);
  const ski = cert.getExtension("subjectKeyIdentifier") as { subjectKeyIdentifier?: string } | undefined;
  return { subject, keyId: ski?.subjectKeyIdentifier };
}

/** One revokedCertificates entry: serial, date and, for a hold, its reasonCode extension. */
function revokedEntry(r: RevokedCertificate): forge.asn1.Asn1 {
  const reason = r.reason
    ? [
        seq([
          extension(
            REASON_CODE,
            asn1.create(
              asn1.Class.UNIVERSAL,
              asn1.Type.ENUMERATED,
              false,
              String.fromCharCode(CERTIFICATE_HOLD),
            ),
          ),
        ]),
      ]
    : [];
  return seq([integerOfHex(r.serial), time(new Date(r.revokedAt)), ...reason]);
}

/** A signed CRL, PEM, listing `revoked` (sorted by serial, so equal lists give equal CRLs' bodies). */
export function createCrl(req: CrlRequest): string {
  const { subject, keyId } = issuerOf(req.caCertPem);
  const thisUpdate = req.thisUpdate ?? new Date();
  const nextUpdate = new Date(thisUpdate.getTime() + req.validityDays * DAY_MS);
  const algorithm = seq([oid(SHA256_WITH_RSA), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, "")]);
  const revoked = [...req.revoked].sort((a, b) => (a.serial < b.serial ? -1 : a.serial > b.serial ? 1 : 0));
  const extensions = [
    extension(CRL_NUMBER, integerOfHex(evenHex(req.crlNumber))),
    ...(keyId
      ? [
          extension(
            AUTHORITY_KEY_ID,
            seq([
              asn1.create(
                asn1.Class.CONTEXT_SPECIFIC,
                0,
                false,
                Buffer.from(keyId, "hex").toString("binary"),
              ),
            ]),
          ),
        ]
      : []),
  ];
  const tbs = seq([
    // v2: a CRL with extensions.
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, "\x01"),
    algorithm,
    subject,
    time(thisUpdate),
    time(nextUpdate),
    ...(revoked.length ? [seq(revoked.map(revokedEntry))] : []),
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [seq(extensions)]),
  ]);
  const tbsDer = Buffer.from(asn1.toDer(tbs).getBytes(), "binary");
  const signature = sign("sha256", tbsDer, req.caKeyPem);
  const crl = seq([
    tbs,
    algorithm,
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, `\x00${signature.toString("binary")}`),
  ]);
  const b64 = Buffer.from(asn1.toDer(crl).getBytes(), "binary").toString("base64");
  return `-----BEGIN X509 CRL-----\n${b64.replace(/.{1,64}/g, "$&\n")}-----END X509 CRL-----\n`;
}
