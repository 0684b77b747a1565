/**
 * TvdAuthority and MemberIdentity driven through their lifecycles as the engine drives them:
 * check, then create or diff + update, with stored outputs as `olds` and checked inputs as `news`.
 */
import { X509Certificate } from "node:crypto";
import { UNKNOWN } from "../../provider/core/define";
import { describeCertificate } from "../../provider/pki/ssh";
import { memberIdentityLifecycle as member } from "../../provider/resources/memberIdentity/provider";
import { tvdAuthorityLifecycle as authority } from "../../provider/resources/tvdAuthority/provider";

type Props = Record<string, unknown>;

async function createAuthority(inputs: Props): Promise<Props> {
  const checked = await authority.check({}, inputs);
  expect(checked.failures ?? []).toEqual([]);
  const created = await authority.create(checked.inputs!);
  // The serial, not the TVD name: a replacement with the same name is another CA.
  expect(created.id).toBe(created.outs?.caSerial);
  return created.outs as Props;
}

/** A member's inputs as the MemberIdentity class passes them: the CA material of `ca`. */
function memberInputs(ca: Props, patch: Props = {}): Props {
  return {
    memberName: "web1",
    hostnames: ["web1.finance.example"],
    ipAddresses: ["10.50.0.11"],
    caCertPem: ca.caCertPem,
    caKeyPem: ca.caKeyPem,
    sshCaPrivateKey: ca.sshCaPrivateKey,
    sshCaPublicKey: ca.sshCaPublicKey,
    ...patch,
  };
}

/** A member's inputs as `check` leaves them for diff and update: defaults filled in. */
async function checkedMember(olds: Props, news: Props): Promise<Props> {
  const checked = await member.check(olds, news);
  expect(checked.failures ?? []).toEqual([]);
  return checked.inputs as Props;
}

async function createMember(inputs: Props): Promise<Props> {
  return (await member.create(await checkedMember({}, inputs))).outs as Props;
}

async function diffMember(olds: Props, news: Props) {
  return member.diff("web1", olds, await checkedMember(olds, news));
}

async function updateMember(olds: Props, news: Props): Promise<Props> {
  return (await member.update("web1", olds, await checkedMember(olds, news))).outs as Props;
}

function issuedBy(certPem: unknown, caCertPem: unknown): boolean {
  const leaf = new X509Certificate(String(certPem));
  const ca = new X509Certificate(String(caCertPem));
  return leaf.verify(ca.publicKey) && leaf.checkIssued(ca);
}

describe("TvdAuthority lifecycle", () => {
  let ca: Props;
  beforeAll(async () => {
    ca = await createAuthority({ tvdName: "finance" });
  });

  it("creates an X.509 CA and an SSH CA, and records the inputs", () => {
    const cert = new X509Certificate(String(ca.caCertPem));
    expect(cert.ca).toBe(true);
    expect(cert.subject).toContain("CN=finance TVD CA");
    expect(cert.serialNumber.toLowerCase()).toBe(ca.caSerial);
    expect(ca).toMatchObject({
      tvdName: "finance",
      validityDays: 3650,
      caKeyPem: expect.stringMatching(/^-----BEGIN PRIVATE KEY-----/),
      sshCaPrivateKey: expect.stringMatching(/^-----BEGIN OPENSSH PRIVATE KEY-----/),
      sshCaPublicKey: expect.stringMatching(/^ssh-ed25519 \S+ finance TVD SSH CA$/),
      sshCaFingerprint: expect.stringMatching(/^SHA256:/),
      defaults: { validityDays: 3650 },
      providerVersion: expect.any(String),
    });
  });

  it.each([
    ["the TVD name", { tvdName: "hr" }, ["tvdName"]],
    ["the validity", { validityDays: 365 }, ["validityDays"]],
  ])("on a change of %s (%j), diff replaces %j", async (_name, patch, replaces) => {
    const news = (await authority.check(ca, { tvdName: "finance", ...patch })).inputs!;
    const d = await authority.diff(String(ca.caSerial), ca, news);
    expect(d).toEqual({ changes: true, replaces, deleteBeforeReplace: false });
  });

  it("plans nothing when the default is written out", async () => {
    const news = (await authority.check(ca, { tvdName: "finance", validityDays: 3650 })).inputs!;
    expect(await authority.diff(String(ca.caSerial), ca, news)).toEqual({ changes: false });
  });

  it("reads the state back as it is, with its inputs and the defaults it was given", async () => {
    const r = await authority.read(String(ca.caSerial), { ...ca, __provider: "serialized" });
    expect(r).toEqual({
      id: ca.caSerial,
      props: ca,
      inputs: { tvdName: "finance", validityDays: 3650, defaults: { validityDays: 3650 } },
    });
  });

  it("reports every bad input at once", async () => {
    const r = await authority.check({}, { tvdName: "fin;ance", validityDays: 0 });
    expect(r.failures?.map((f) => f.property).sort()).toEqual(["tvdName", "validityDays"]);
  });
});

describe("MemberIdentity lifecycle", () => {
  let ca: Props;
  let web1: Props;
  beforeAll(async () => {
    ca = await createAuthority({ tvdName: "finance" });
    web1 = await createMember(memberInputs(ca));
  });

  it("issues an SSH host certificate and an X.509 certificate under the TVD's CAs", async () => {
    expect(issuedBy(web1.x509CertPem, ca.caCertPem)).toBe(true);
    expect(new X509Certificate(String(web1.x509CertPem)).subjectAltName).toBe(
      "DNS:web1.finance.example, IP Address:10.50.0.11",
    );
    expect(await describeCertificate(String(web1.sshHostCertificate))).toEqual({
      type: "host",
      serial: web1.sshCertSerial,
      principals: ["web1.finance.example", "10.50.0.11"],
      signingCaFingerprint: ca.sshCaFingerprint,
      keyId: "web1",
    });
    expect(web1).toMatchObject({
      rotation: "0",
      validityDays: 365,
      sshHostPrivateKey: expect.stringMatching(/^-----BEGIN OPENSSH PRIVATE KEY-----/),
      sshHostKeyFingerprint: expect.stringMatching(/^SHA256:/),
      x509KeyPem: expect.stringMatching(/^-----BEGIN PRIVATE KEY-----/),
      x509Serial: expect.stringMatching(/^[0-9a-f]{32}$/),
    });
  });

  it("keeps the TVD's CA keys out of the member's state", () => {
    expect(web1).not.toHaveProperty("caKeyPem");
    expect(web1).not.toHaveProperty("sshCaPrivateKey");
    expect(JSON.stringify(web1)).not.toContain(String(ca.caKeyPem));
    expect(JSON.stringify(web1)).not.toContain(String(ca.sshCaPrivateKey));
  });

  it.each([
    ["rotation", { rotation: "1" }, []],
    ["rotation, as a number", { rotation: 2 }, []],
    ["hostnames", { hostnames: ["web1.finance.example", "www.finance.example"] }, []],
    ["ipAddresses", { ipAddresses: [] }, []],
    ["validityDays", { validityDays: 30 }, []],
    ["memberName", { memberName: "web2" }, ["memberName"]],
  ])("on a change of %s (%j), diff replaces %j", async (_name, patch, replaces) => {
    const d = await diffMember(web1, memberInputs(ca, patch));
    expect(d).toEqual({ changes: true, replaces, deleteBeforeReplace: false });
  });

  it("plans nothing for rotation 0 as a number", async () => {
    expect(await diffMember(web1, memberInputs(ca, { rotation: 0 }))).toEqual({ changes: false });
  });

  it("reissues both certificates on a rotation, for the same host key", async () => {
    const news = memberInputs(ca, { rotation: "1" });
    const rotated = await updateMember(web1, news);
    expect(rotated.sshHostPublicKey).toBe(web1.sshHostPublicKey);
    expect(rotated.sshHostPrivateKey).toBe(web1.sshHostPrivateKey);
    expect(rotated.sshHostKeyFingerprint).toBe(web1.sshHostKeyFingerprint);
    // The agent took the member's vTPM with these: a new value would lock it out.
    expect(web1.tpmOwnerAuth).toMatch(/^[0-9a-f]{64}$/);
    expect(web1.tpmSrkAuth).toMatch(/^[0-9a-f]{64}$/);
    expect(web1.tpmSrkAuth).not.toBe(web1.tpmOwnerAuth);
    expect(rotated.tpmOwnerAuth).toBe(web1.tpmOwnerAuth);
    expect(rotated.tpmSrkAuth).toBe(web1.tpmSrkAuth);
    expect(rotated.sshCertSerial).not.toBe(web1.sshCertSerial);
    expect(rotated.x509Serial).not.toBe(web1.x509Serial);
    expect(rotated.sshHostCertificate).not.toBe(web1.sshHostCertificate);
    expect(issuedBy(rotated.x509CertPem, ca.caCertPem)).toBe(true);
    expect(rotated.rotation).toBe("1");
    // The stored state now matches the inputs: the next diff is empty.
    expect(await diffMember(rotated, news)).toEqual({ changes: false });
  });

  it("moves to a new CA by reissuing under it, keeping the host key", async () => {
    const newCa = await createAuthority({ tvdName: "finance", validityDays: 365 });
    const news = memberInputs(newCa);
    expect(await diffMember(web1, news)).toEqual({
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });
    const moved = await updateMember(web1, news);
    expect(moved).not.toHaveProperty("caKeyPem");
    expect(moved).not.toHaveProperty("sshCaPrivateKey");
    expect(moved.sshHostPublicKey).toBe(web1.sshHostPublicKey);
    expect(issuedBy(moved.x509CertPem, newCa.caCertPem)).toBe(true);
    expect(issuedBy(moved.x509CertPem, ca.caCertPem)).toBe(false);
    expect((await describeCertificate(String(moved.sshHostCertificate))).signingCaFingerprint).toBe(
      newCa.sshCaFingerprint,
    );
  });

  it("refuses CA keys that do not belong to the CA certificates", async () => {
    const other = await createAuthority({ tvdName: "hr" });
    await expect(
      updateMember(web1, memberInputs(ca, { sshCaPrivateKey: other.sshCaPrivateKey })),
    ).rejects.toThrow(/sshCaPrivateKey \(SHA256:\S+\) is not the key of sshCaPublicKey/);
    await expect(updateMember(web1, memberInputs(ca, { caKeyPem: other.caKeyPem }))).rejects.toThrow(
      /caKeyPem is not the key of caCertPem/,
    );
  });

  it("reads the state back, with the names the SSH certificate certifies", async () => {
    const r = await member.read("web1", { ...web1, __provider: "serialized" });
    expect(r.id).toBe("web1");
    expect(r.props).toEqual(web1);
    expect(r.inputs).toEqual({
      memberName: "web1",
      hostnames: ["web1.finance.example"],
      ipAddresses: ["10.50.0.11"],
      caCertPem: ca.caCertPem,
      sshCaPublicKey: ca.sshCaPublicKey,
      rotation: "0",
      validityDays: 365,
      defaults: { rotation: "0", validityDays: 365 },
    });
    // A refreshed state holds no CA private keys, and still diffs clean against the program.
    expect(await diffMember(r.props as Props, memberInputs(ca))).toEqual({ changes: false });
  });

  it("reports the names the certificate really certifies as drift", async () => {
    const other = await createMember(memberInputs(ca, { hostnames: ["www.finance.example"] }));
    const r = await member.read("web1", { ...web1, sshHostCertificate: other.sshHostCertificate });
    expect(r.inputs).toMatchObject({ hostnames: ["www.finance.example"], ipAddresses: ["10.50.0.11"] });
    expect(r.props).toMatchObject({ sshCertSerial: other.sshCertSerial });
    expect(await diffMember(r.props as Props, memberInputs(ca))).toEqual({
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });
  });

  it("deletes from a state that holds no CA private keys", async () => {
    await expect(member.delete("web1", web1)).resolves.toBeUndefined();
  });

  it("reports every bad input at once, with the fix", async () => {
    const r = await member.check(
      {},
      memberInputs(ca, { memberName: "web1;reboot", hostnames: [], ipAddresses: ["10.0.0.300"] }),
    );
    expect(r.failures?.map((f) => f.property).sort()).toEqual(["hostnames", "ipAddresses.0", "memberName"]);
    expect(r.failures?.find((f) => f.property === "ipAddresses.0")?.reason).toMatch(/IPv4 address/);
  });

  it("at preview, leaves a CA not yet known unchecked and counts it as a change", async () => {
    const news = memberInputs(ca, {
      caCertPem: UNKNOWN,
      caKeyPem: UNKNOWN,
      sshCaPublicKey: UNKNOWN,
      sshCaPrivateKey: UNKNOWN,
    });
    expect(await diffMember(web1, news)).toEqual({
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });
  });
});
