import { execFileSync } from "node:child_process";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import {
  describeCertificate,
  generateSshKeyPair,
  parseCertificateListing,
  type HostCertificateRequest,
  publicKeyFingerprint,
  signHostCertificate,
} from "../../provider/pki/ssh";
import { generateKeyPairSync } from "node:crypto";
import {
  createTvdCa,
  issueIdentityCertificate,
  issueTpmKeyCertificate,
  serialOf,
} from "../../provider/pki/x509";

/** `ssh-keygen -l` of a public key line: OpenSSH's fingerprint, independent of ours. */
function sshKeygenFingerprint(publicKey: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), "pki-test-"));
  try {
    writeFileSync(path.join(dir, "key.pub"), `${publicKey}\n`);
    return execFileSync("ssh-keygen", ["-l", "-f", path.join(dir, "key.pub")], { encoding: "utf8" }).split(
      " ",
    )[1];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("X.509 CA and member certificates", () => {
  const ca = createTvdCa({ tvdName: "finance", validityDays: 30 });
  const caCert = new X509Certificate(ca.certPem);
  const leaf = issueIdentityCertificate({
    caCertPem: ca.certPem,
    caKeyPem: ca.keyPem,
    commonName: "web1",
    dnsNames: ["web1.finance.example", "web1"],
    ipAddresses: ["10.50.0.11"],
    validityDays: 7,
  });
  const leafCert = new X509Certificate(leaf.certPem);

  it("makes a self-signed CA named after the TVD", () => {
    expect(caCert.ca).toBe(true);
    expect(caCert.verify(caCert.publicKey)).toBe(true);
    expect(caCert.checkIssued(caCert)).toBe(true);
    expect(caCert.subject.split("\n").sort()).toEqual(["CN=finance TVD CA", "O=pulumi-tvd"]);
    expect(caCert.keyUsage).toBeUndefined(); // keyUsage on X509Certificate means extended key usage
    expect(serialOf(ca.certPem)).toBe(ca.serial);
    expect(ca.serial).toMatch(/^[0-9a-f]{32}$/);
    expect(ca.certPem).toMatch(/^-----BEGIN CERTIFICATE-----\n[^\r]+-----END CERTIFICATE-----\n$/);
  });

  it("issues a leaf that verifies against the CA, with its CN and SANs", () => {
    expect(leafCert.ca).toBe(false);
    expect(leafCert.verify(caCert.publicKey)).toBe(true);
    expect(leafCert.checkIssued(caCert)).toBe(true);
    expect(leafCert.subject).toContain("CN=web1");
    expect(leafCert.subjectAltName).toBe("DNS:web1.finance.example, DNS:web1, IP Address:10.50.0.11");
    expect(leafCert.keyUsage?.sort()).toEqual(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
    expect(leafCert.checkPrivateKey(createPrivateKey(leaf.keyPem))).toBe(true);
    expect(serialOf(leaf.certPem)).toBe(leaf.serial);
  });

  it("does not let a leaf outlive its CA", () => {
    const long = issueIdentityCertificate({ ...leafRequest(), validityDays: 3650 });
    expect(new Date(new X509Certificate(long.certPem).validTo).getTime()).toBeLessThanOrEqual(
      new Date(caCert.validTo).getTime(),
    );
  });

  it("gives every certificate its own serial", () => {
    const serials = [ca.serial, leaf.serial, issueIdentityCertificate(leafRequest()).serial];
    expect(new Set(serials).size).toBe(serials.length);
  });

  it("does not verify a leaf against another TVD's CA", () => {
    const other = new X509Certificate(createTvdCa({ tvdName: "hr", validityDays: 30 }).certPem);
    expect(leafCert.verify(other.publicKey)).toBe(false);
    expect(leafCert.checkIssued(other)).toBe(false);
  });

  function leafRequest() {
    return {
      caCertPem: ca.certPem,
      caKeyPem: ca.keyPem,
      commonName: "web2",
      dnsNames: ["web2"],
      ipAddresses: [],
      validityDays: 7,
    };
  }

  it.each([
    [
      "another CA's key",
      () => ({ caKeyPem: createTvdCa({ tvdName: "hr", validityDays: 1 }).keyPem }),
      /caKeyPem is not the key of caCertPem/,
    ],
    ["a leaf as CA", () => ({ caCertPem: leaf.certPem, caKeyPem: leaf.keyPem }), /is not a CA certificate/],
    ["a key that is not PEM", () => ({ caKeyPem: "not a key" }), /caKeyPem is not a PEM private key/],
    ["a serial with its top bit set", () => ({ serial: "80" + "00".repeat(15) }), /first byte is 01 to 7f/],
    ["zero days", () => ({ validityDays: 0 }), /validityDays 0 must be/],
  ])("refuses %s with a clear error", (_name, patch, message) => {
    expect(() => issueIdentityCertificate({ ...leafRequest(), ...patch() })).toThrow(message);
  });

  it("never puts the CA key into an error", () => {
    const wrong = createTvdCa({ tvdName: "hr", validityDays: 1 }).keyPem;
    expect(() => issueIdentityCertificate({ ...leafRequest(), caKeyPem: wrong })).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining("PRIVATE KEY") }),
    );
  });
});

describe("certificates for keys in a member's TPM", () => {
  const ca = createTvdCa({ tvdName: "finance", validityDays: 30 });
  const tpmKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey;
  const publicKeyPem = tpmKey.export({ type: "spki", format: "pem" }).toString();
  const issue = (purpose: "ek" | "ak") =>
    issueTpmKeyCertificate({
      caCertPem: ca.certPem,
      caKeyPem: ca.keyPem,
      commonName: `web1 ${purpose.toUpperCase()}`,
      publicKeyPem,
      purpose,
      validityDays: 7,
    });

  it.each([
    ["ek", "2.23.133.8.1", "Key Encipherment"],
    ["ak", "2.23.133.8.3", "Digital Signature"],
  ] as const)(
    "certifies the %s for the TPM's own key, with the TCG purpose, and openssl verifies it",
    (purpose, oid, usage) => {
      const issued = issue(purpose);
      const cert = new X509Certificate(issued.certPem);
      expect(cert.publicKey.equals(tpmKey)).toBe(true);
      expect(cert.keyUsage).toEqual([oid]);
      expect(cert.ca).toBe(false);
      expect(serialOf(issued.certPem)).toBe(issued.serial);
      const dir = mkdtempSync(path.join(tmpdir(), "tvd-tpmcert-"));
      try {
        writeFileSync(path.join(dir, "ca.pem"), ca.certPem);
        writeFileSync(path.join(dir, "leaf.pem"), issued.certPem);
        const verify = execFileSync("openssl", [
          "verify",
          "-CAfile",
          path.join(dir, "ca.pem"),
          path.join(dir, "leaf.pem"),
        ]);
        expect(verify.toString()).toMatch(/: OK$/m);
        const text = execFileSync("openssl", [
          "x509",
          "-noout",
          "-text",
          "-in",
          path.join(dir, "leaf.pem"),
        ]).toString();
        expect(text).toContain(usage);
        expect(text).toContain(oid);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it("does not verify against another TVD's CA", () => {
    const other = new X509Certificate(createTvdCa({ tvdName: "hr", validityDays: 30 }).certPem);
    expect(new X509Certificate(issue("ek").certPem).verify(other.publicKey)).toBe(false);
  });
});

describe("OpenSSH keys and host certificates", () => {
  let ca: Awaited<ReturnType<typeof generateSshKeyPair>>;
  let host: Awaited<ReturnType<typeof generateSshKeyPair>>;
  beforeAll(async () => {
    [ca, host] = await Promise.all([
      generateSshKeyPair("finance TVD SSH CA"),
      generateSshKeyPair("web1 host key"),
    ]);
  });

  function hostCertRequest(patch: Partial<HostCertificateRequest> = {}): HostCertificateRequest {
    return {
      caPrivateKey: ca.privateKey,
      hostPublicKey: host.publicKey,
      identity: "web1",
      principals: ["web1"],
      validityDays: 1,
      ...patch,
    };
  }

  it("makes an ed25519 key pair whose fingerprint is the one ssh-keygen -l prints", () => {
    expect(host.privateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    expect(host.publicKey).toMatch(/^ssh-ed25519 AAAA[A-Za-z0-9+/=]+ web1 host key$/);
    expect(host.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(host.fingerprint).toBe(sshKeygenFingerprint(host.publicKey));
    expect(ca.fingerprint).not.toBe(host.fingerprint);
  });

  it("signs a host certificate that OpenSSH reads back with its principals, serial and CA", async () => {
    const principals = ["web1.finance.example", "web1", "10.50.0.11"];
    const signed = await signHostCertificate({
      caPrivateKey: ca.privateKey,
      hostPublicKey: host.publicKey,
      identity: "web1",
      principals,
      serial: 4242,
      validityDays: 30,
    });
    expect(signed.serial).toBe(4242);
    expect(signed.certificate).toMatch(/^ssh-ed25519-cert-v01@openssh\.com AAAA/);
    expect(await describeCertificate(signed.certificate)).toEqual({
      type: "host",
      serial: "4242",
      principals,
      signingCaFingerprint: ca.fingerprint,
      keyId: "web1",
    });
    // A certificate carries the key it certifies: its fingerprint is the host key's.
    expect(sshKeygenFingerprint(signed.certificate)).toBe(host.fingerprint);
    expect(publicKeyFingerprint(signed.certificate)).not.toBe(host.fingerprint);
  });

  it("picks a different random serial for every certificate", async () => {
    const [a, b] = await Promise.all([
      signHostCertificate(hostCertRequest()),
      signHostCertificate(hostCertRequest()),
    ]);
    expect(a.serial).not.toBe(b.serial);
    expect((await describeCertificate(a.certificate)).serial).toBe(String(a.serial));
  });

  it.each([
    [
      "a CA key that is not a key",
      { caPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n" },
      /ssh-keygen -q -s .* failed \(exit code 255\): .*[Ll]oad key/,
    ],
    ["a principal with a comma", { principals: ["web1,evil"] }, /principal "web1,evil" must be/],
    ["no principal", { principals: [] }, /at least one principal/],
    ["a negative serial", { serial: -1 }, /serial -1 must be/],
  ])("refuses %s with a clear error", async (_name, patch, message) => {
    await expect(signHostCertificate(hostCertRequest(patch))).rejects.toThrow(message);
  });

  it("never puts the CA key into an error", async () => {
    const garbled = ca.privateKey.replace(/^(-----BEGIN OPENSSH PRIVATE KEY-----\n.{20})/, "$1garbled");
    const failure = await signHostCertificate(hostCertRequest({ caPrivateKey: garbled })).catch(
      (e: Error) => e,
    );
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).not.toContain(ca.privateKey.split("\n")[2]);
  });

  it("does not describe a plain public key as a certificate", async () => {
    await expect(describeCertificate(host.publicKey)).rejects.toThrow(
      /ssh-keygen -L -f .* failed .*is not a certificate/,
    );
  });

  it("says to install openssh-client when ssh-keygen is missing", async () => {
    const saved = process.env.PATH;
    process.env.PATH = "/nonexistent";
    try {
      await expect(generateSshKeyPair("x")).rejects.toThrow(/install openssh-client/);
    } finally {
      process.env.PATH = saved;
    }
  });

  it("reads principals that look like headings (an IPv6 address) as principals", () => {
    const listing = [
      "/tmp/x/key-cert.pub:",
      "        Type: ssh-ed25519-cert-v01@openssh.com user certificate",
      "        Public key: ED25519-CERT SHA256:abc",
      "        Signing CA: ED25519 SHA256:OyPPc6PWhwKaZ6Oe0XQOMeLva/pueYmNGLgar3R/GuY (using ssh-ed25519)",
      '        Key ID: "a "quoted" id"',
      "        Serial: 18446744073709551615",
      "        Valid: forever",
      "        Principals: ",
      "                fd00::1",
      "                Name: x",
      "        Critical Options: (none)",
      "        Extensions: (none)",
    ].join("\n");
    expect(parseCertificateListing(listing)).toEqual({
      type: "user",
      serial: "18446744073709551615",
      principals: ["fd00::1", "Name: x"],
      signingCaFingerprint: "SHA256:OyPPc6PWhwKaZ6Oe0XQOMeLva/pueYmNGLgar3R/GuY",
      keyId: 'a "quoted" id',
    });
  });
});
