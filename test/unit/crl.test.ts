/**
 * The TVD's CRL (issue 16.3: a removed member's certificate is rejected by the others), checked
 * by real OpenSSL as a member would: `openssl verify -crl_check` with the TVD's CA and the CRL the
 * members hold rejects a revoked member's certificate and accepts the others; a CRL signed by
 * another CA, or expired, is refused; the revocation list resource keeps every serial it saw, so
 * a member removed (or a certificate reissued by a rotation) is revoked in the next list.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createCrl } from "../../provider/pki/crl";
import { createTvdCa, issueIdentityCertificate } from "../../provider/pki/x509";
import { revocationListLifecycle as crls } from "../../provider/resources/revocationList/provider";

jest.setTimeout(60_000);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "tvd-crl-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ca = createTvdCa({ tvdName: "red", validityDays: 30 });
const member = (name: string) =>
  issueIdentityCertificate({
    caCertPem: ca.certPem,
    caKeyPem: ca.keyPem,
    commonName: name,
    dnsNames: [name],
    ipAddresses: [],
    validityDays: 7,
  });
const [a, b, c] = ["red-01", "red-02", "red-03"].map(member);

/** `openssl verify -crl_check` of a certificate with the TVD's CA and a CRL: its verdict. */
function verify(certPem: string, crlPem: string, caPem = ca.certPem): { ok: boolean; out: string } {
  const file = (name: string, text: string) => {
    const p = path.join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const r = spawnSync(
    "openssl",
    [
      "verify",
      "-crl_check",
      "-CAfile",
      file("ca.pem", caPem),
      "-CRLfile",
      file("crl.pem", crlPem),
      file("c.pem", certPem),
    ],
    { encoding: "utf8" },
  );
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

it("rejects a revoked member's certificate and accepts the others", () => {
  const crl = createCrl({
    caCertPem: ca.certPem,
    caKeyPem: ca.keyPem,
    revoked: [{ serial: b.serial, revokedAt: new Date().toISOString() }],
    crlNumber: 2,
    validityDays: 7,
  });
  expect(verify(a.certPem, crl)).toMatchObject({ ok: true });
  expect(verify(c.certPem, crl)).toMatchObject({ ok: true });
  const revoked = verify(b.certPem, crl);
  expect(revoked.ok).toBe(false);
  expect(revoked.out).toContain("certificate revoked");
  const text = spawnSync("openssl", ["crl", "-noout", "-text", "-in", path.join(dir, "crl.pem")], {
    encoding: "utf8",
  }).stdout;
  expect(text).toMatch(/X509v3 CRL Number:\s*\n\s*2\n/);
  expect(text).toContain(`Serial Number: ${b.serial.toUpperCase()}`);
  expect(text).toContain("Issuer: CN = red TVD CA, O = pulumi-tvd");
  expect(text).toContain("X509v3 Authority Key Identifier");
});

it("an empty list accepts everyone; a list from another CA or one past its next update is refused", () => {
  const empty = createCrl({
    caCertPem: ca.certPem,
    caKeyPem: ca.keyPem,
    revoked: [],
    crlNumber: 1,
    validityDays: 7,
  });
  expect(verify(b.certPem, empty)).toMatchObject({ ok: true });
  const other = createTvdCa({ tvdName: "red", validityDays: 30 });
  const forged = createCrl({
    caCertPem: other.certPem,
    caKeyPem: other.keyPem,
    revoked: [],
    crlNumber: 9,
    validityDays: 7,
  });
  expect(verify(b.certPem, forged).ok).toBe(false);
  const stale = createCrl({
    caCertPem: ca.certPem,
    caKeyPem: ca.keyPem,
    revoked: [],
    crlNumber: 1,
    validityDays: 1,
    thisUpdate: new Date(Date.now() - 3 * 24 * 3600 * 1000),
  });
  expect(verify(a.certPem, stale)).toMatchObject({
    ok: false,
    out: expect.stringContaining("CRL has expired"),
  });
});

describe("TvdRevocationList", () => {
  const owner = "p/s TvdRevocationList red-crl";
  const inputs = (serials: string[]) => ({
    owner,
    caCertPem: ca.certPem,
    caKeyPem: ca.keyPem,
    memberSerials: serials,
  });

  it("revokes a member's serial once it is no longer among the members, and keeps it revoked", async () => {
    const first = await crls.check({}, inputs([a.serial, b.serial, c.serial]));
    expect(first.failures ?? []).toEqual([]);
    const made = await crls.create(first.inputs);
    expect(made.outs).toMatchObject({ revokedSerials: [], crlNumber: 1 });
    expect(verify(b.certPem, made.outs.crlPem as string)).toMatchObject({ ok: true });

    // red-02 leaves the TVD.
    const news = (await crls.check(made.outs, inputs([a.serial, c.serial]))).inputs;
    expect(await crls.diff("red", made.outs, news)).toMatchObject({ changes: true, replaces: [] });
    const after = (await crls.update("red", made.outs, news)).outs;
    expect(after).toMatchObject({ revokedSerials: [b.serial], crlNumber: 2 });
    expect(verify(b.certPem, after.crlPem as string)).toMatchObject({
      ok: false,
      out: expect.stringContaining("certificate revoked"),
    });
    expect(verify(a.certPem, after.crlPem as string)).toMatchObject({ ok: true });

    // A rotation reissues red-01: its old certificate is revoked too, red-02 stays revoked.
    const d = member("red-01");
    const rotated = (
      await crls.update("red", after, (await crls.check(after, inputs([d.serial, c.serial]))).inputs)
    ).outs;
    expect(rotated).toMatchObject({ revokedSerials: [a.serial, b.serial].sort(), crlNumber: 3 });
    expect(verify(a.certPem, rotated.crlPem as string).ok).toBe(false);
    expect(verify(d.certPem, rotated.crlPem as string).ok).toBe(true);

    // Nothing changed: no new list.
    const same = (await crls.check(rotated, inputs([d.serial, c.serial]))).inputs;
    expect(await crls.diff("red", rotated, same)).toEqual({ changes: false });
  });

  it("holds the certificates of a member failing its attestation, and lifts the hold once it proves its baseline", async () => {
    const made = (await crls.create((await crls.check({}, inputs([a.serial, b.serial]))).inputs)).outs;
    // red-02 fails its attestation: its certificate is on hold, red-01's is not.
    const failing = (await crls.check(made, { ...inputs([a.serial, b.serial]), heldSerials: [b.serial] }))
      .inputs;
    expect(await crls.diff("red", made, failing)).toMatchObject({ changes: true, replaces: [] });
    const held = (await crls.update("red", made, failing)).outs;
    expect(held).toMatchObject({ revokedSerials: [], held: [{ serial: b.serial }], crlNumber: 2 });
    expect(verify(b.certPem, held.crlPem as string)).toMatchObject({
      ok: false,
      out: expect.stringContaining("certificate revoked"),
    });
    expect(verify(a.certPem, held.crlPem as string)).toMatchObject({ ok: true });
    const text = spawnSync("openssl", ["crl", "-noout", "-text", "-in", path.join(dir, "crl.pem")], {
      encoding: "utf8",
    }).stdout;
    expect(text).toMatch(new RegExp(`Serial Number: ${b.serial.toUpperCase()}[\\s\\S]*Certificate Hold`));
    // Still failing in the next up: the hold keeps when it began.
    const again = (await crls.update("red", held, failing)).outs as { held: unknown };
    expect(again.held).toEqual((held as { held: unknown }).held);
    // It proves its baseline again: the next list lifts the hold.
    const back = (await crls.check(held, inputs([a.serial, b.serial]))).inputs;
    const lifted = (await crls.update("red", held, back)).outs;
    expect(lifted).toMatchObject({ revokedSerials: [], held: [] });
    expect(verify(b.certPem, lifted.crlPem as string)).toMatchObject({ ok: true });
    // A member removed while on hold is revoked for good, not also held.
    const removed = (await crls.check(lifted, { ...inputs([a.serial]), heldSerials: [b.serial] })).inputs;
    const gone = (await crls.update("red", lifted, removed)).outs;
    expect(gone).toMatchObject({ revokedSerials: [b.serial], held: [] });
  });

  it("refuses a serial that is not lowercase hex, naming it", async () => {
    const r = await crls.check({}, inputs(["XYZ"]));
    expect(r.failures).toEqual([
      expect.objectContaining({
        property: "memberSerials.0",
        reason: expect.stringContaining("lowercase hex"),
      }),
    ]);
  });
});
