/**
 * X.509 for a TVD: one self-signed CA per TVD and the TLS identities of its members. node-forge
 * writes the certificates (node can read and verify them but not write them); keys and
 * signatures come from node's native crypto. Runs where Pulumi runs, never on a dom0.
 */
import {
  constants,
  createPrivateKey,
  generateKeyPairSync,
  privateEncrypt,
  randomBytes,
  X509Certificate,
} from "node:crypto";
import forge from "node-forge";

const ORGANIZATION = "pulumi-tvd";
const DAY_MS = 24 * 60 * 60 * 1000;
/** Certificates start a little in the past, so that a peer whose clock lags accepts them at once. */
const BACKDATE_MS = 5 * 60 * 1000;

/** A PEM certificate, its PKCS#8 PEM private key and its serial number (lowercase hex). */
export interface IssuedCertificate {
  readonly certPem: string;
  readonly keyPem: string;
  readonly serial: string;
}

export interface TvdCaRequest {
  /** The CA's subject becomes `CN=<tvdName> TVD CA, O=pulumi-tvd`. */
  readonly tvdName: string;
  readonly validityDays: number;
  /** Lowercase hex. @default - 16 random bytes */
  readonly serial?: string;
}

export interface IdentityCertificateRequest {
  readonly caCertPem: string;
  readonly caKeyPem: string;
  readonly commonName: string;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  /** Lowercase hex. @default - 16 random bytes */
  readonly serial?: string;
  /** Capped at the CA's own expiry: a certificate cannot outlive the CA that vouches for it. */
  readonly validityDays: number;
}

/**
 * A random 16-byte serial (RFC 5280 allows up to 20). The top bits are fixed to 01 so that the
 * DER integer is positive and minimal without a leading zero byte, which strict parsers reject.
 */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] & 0x3f) | 0x40;
  return bytes.toString("hex");
}

function checkedSerial(serial: string | undefined): string {
  if (serial === undefined) return randomSerial();
  // A first byte of 01..7f keeps the DER integer positive and minimal.
  if (!/^(?:[0-9a-f]{2}){1,20}$/.test(serial) || serial < "01" || serial >= "80") {
    throw new Error(
      `serial ${JSON.stringify(serial)} must be 1 to 20 bytes of lowercase hex whose first byte is 01 to 7f; leave it unset for a random one`,
    );
  }
  return serial;
}

function checkedValidityDays(days: number): number {
  if (!Number.isInteger(days) || days < 1) {
    throw new Error(`validityDays ${days} must be a whole number of days, at least 1`);
  }
  return days;
}

function rsaKeyPair(): { publicKey: forge.pki.rsa.PublicKey; keyPem: string } {
  const pair = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  return { publicKey: forge.pki.publicKeyFromPem(pair.publicKey), keyPem: pair.privateKey };
}

/** DER of the DigestInfo header for SHA-256 (RFC 8017 §9.2), which precedes the digest. */
const SHA256_DIGEST_INFO = Buffer.from("3031300d060960864801650304020105000420", "hex");

/**
 * Signs `cert` with node's native RSA (RSASSA-PKCS1-v1_5, SHA-256). forge's own RSA is pure
 * JavaScript and orders of magnitude slower; forge only asks its key to sign a digest.
 */
function signCertificate(cert: forge.pki.Certificate, keyPem: string): void {
  const key = createPrivateKey(keyPem);
  const signer = {
    sign: (md: forge.md.MessageDigest) =>
      privateEncrypt(
        { key, padding: constants.RSA_PKCS1_PADDING },
        Buffer.concat([SHA256_DIGEST_INFO, Buffer.from(md.digest().getBytes(), "binary")]),
      ).toString("binary"),
  };
  cert.sign(signer as unknown as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
}

function newCertificate(
  publicKey: forge.pki.rsa.PublicKey,
  serial: string,
  notAfter: Date,
): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serial;
  cert.validity.notBefore = new Date(Date.now() - BACKDATE_MS);
  cert.validity.notAfter = notAfter;
  return cert;
}

/** forge writes CRLF line ends; node, OpenSSL and config files all use LF. */
function pemOf(cert: forge.pki.Certificate): string {
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, "\n");
}

/** A self-signed CA certificate and key, the X.509 trust anchor of one TVD. */
export function createTvdCa(req: TvdCaRequest): IssuedCertificate {
  const serial = checkedSerial(req.serial);
  const days = checkedValidityDays(req.validityDays);
  const { publicKey, keyPem } = rsaKeyPair();
  const cert = newCertificate(publicKey, serial, new Date(Date.now() + days * DAY_MS));
  const subject = [
    { name: "commonName", value: `${req.tvdName} TVD CA` },
    { name: "organizationName", value: ORGANIZATION },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    // pathLen 0: the CA signs member certificates only, never another CA.
    { name: "basicConstraints", cA: true, pathLenConstraint: 0, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  signCertificate(cert, keyPem);
  return { certPem: pemOf(cert), keyPem, serial };
}

/** The CA certificate, after checking that it is a CA and that `caKeyPem` is its key. */
function loadCa(caCertPem: string, caKeyPem: string): X509Certificate {
  let ca: X509Certificate;
  try {
    ca = new X509Certificate(caCertPem);
  } catch (e) {
    throw new Error(`caCertPem is not a PEM certificate: ${(e as Error).message}`);
  }
  if (!ca.ca) throw new Error(`caCertPem (${ca.subject.replace(/\n/g, ", ")}) is not a CA certificate`);
  let matches: boolean;
  try {
    matches = ca.checkPrivateKey(createPrivateKey(caKeyPem));
  } catch (e) {
    // The key's own text is never part of the message: it is a secret.
    throw new Error(`caKeyPem is not a PEM private key: ${(e as Error).message}`);
  }
  if (!matches) {
    throw new Error(
      `caKeyPem is not the key of caCertPem (${ca.subject.replace(/\n/g, ", ")}); pass the key pair of one TvdAuthority`,
    );
  }
  return ca;
}

/** A TLS server and client certificate for one TVD member, signed by the TVD's CA. */
export function issueIdentityCertificate(req: IdentityCertificateRequest): IssuedCertificate {
  const { publicKey, keyPem } = rsaKeyPair();
  const { certPem, serial } = issueLeaf(req, publicKey, [
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true, clientAuth: true },
    {
      name: "subjectAltName",
      altNames: [
        ...req.dnsNames.map((value) => ({ type: 2, value })),
        ...req.ipAddresses.map((ip) => ({ type: 7, ip })),
      ],
    },
  ]);
  return { certPem, keyPem, serial };
}

/** The TCG's key purposes (TCG EK Credential Profile, `tcg-kp-*`). */
const TCG_KP_EK_CERTIFICATE = "2.23.133.8.1";
const TCG_KP_AIK_CERTIFICATE = "2.23.133.8.3";

export interface TpmKeyCertificateRequest {
  readonly caCertPem: string;
  readonly caKeyPem: string;
  /** The key's subject: `CN=<commonName>, O=pulumi-tvd`. */
  readonly commonName: string;
  /** The TPM key's public half, PEM (SPKI). */
  readonly publicKeyPem: string;
  /**
   * An endorsement key only decrypts (credential activation): keyEncipherment and the TCG's EK
   * purpose. An attestation key only signs (quotes): digitalSignature and the TCG's AIK purpose.
   */
  readonly purpose: "ek" | "ak";
  /** Lowercase hex. @default - 16 random bytes */
  readonly serial?: string;
  /** Capped at the CA's own expiry. */
  readonly validityDays: number;
}

/**
 * A certificate from the TVD's CA for a key that lives in a member's TPM (its EK or AK): the CA
 * vouches, after credential activation proved the AK sits beside the EK, that the key is that
 * member's. No private key is made or returned: it never leaves the TPM.
 */
export function issueTpmKeyCertificate(req: TpmKeyCertificateRequest): { certPem: string; serial: string } {
  const publicKey = forge.pki.publicKeyFromPem(req.publicKeyPem);
  const ek = req.purpose === "ek";
  return issueLeaf(req, publicKey, [
    ek
      ? { name: "keyUsage", keyEncipherment: true, critical: true }
      : { name: "keyUsage", digitalSignature: true, critical: true },
    { name: "extKeyUsage", [ek ? TCG_KP_EK_CERTIFICATE : TCG_KP_AIK_CERTIFICATE]: true },
  ]);
}

/**
 * A leaf certificate for `publicKey` signed by the TVD's CA, with the extensions every leaf has
 * (not a CA, its key identifiers) and the ones given; valid at most as long as the CA.
 */
function issueLeaf(
  req: Pick<IdentityCertificateRequest, "caCertPem" | "caKeyPem" | "commonName" | "serial" | "validityDays">,
  publicKey: forge.pki.rsa.PublicKey,
  extensions: object[],
): { certPem: string; serial: string } {
  const ca = loadCa(req.caCertPem, req.caKeyPem);
  const serial = checkedSerial(req.serial);
  const days = checkedValidityDays(req.validityDays);
  const caNotAfter = new Date(ca.validTo);
  const wanted = new Date(Date.now() + days * DAY_MS);
  const cert = newCertificate(publicKey, serial, wanted < caNotAfter ? wanted : caNotAfter);
  const caCert = forge.pki.certificateFromPem(req.caCertPem);
  cert.setSubject([
    { name: "commonName", value: req.commonName },
    { name: "organizationName", value: ORGANIZATION },
  ]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: "basicConstraints", cA: false, critical: true },
    ...extensions,
    { name: "subjectKeyIdentifier" },
    // forge's `keyIdentifier: true` would hash the leaf's own key; the CA's is what chains.
    { name: "authorityKeyIdentifier", keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  signCertificate(cert, req.caKeyPem);
  return { certPem: pemOf(cert), serial };
}

/** A certificate's serial number as this module writes it: lowercase hex. */
export function serialOf(certPem: string): string {
  return new X509Certificate(certPem).serialNumber.toLowerCase();
}
