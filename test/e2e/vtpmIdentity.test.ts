/**
 * Issue 13 through the real Pulumi CLI, once with TPM 1.2 vTPMs (as Xen's vtpm-stubdom) and once
 * with TPM 2.0: a TVD whose members' vTPMs the system owns. Each member's agent (from its seed,
 * run by the lab's guest) takes ownership with auth the TVD holds and reports its EK, SRK and AK
 * through its xenstore data path; one `up` certifies every member's EK and AK under the TVD's CA
 * after credential activation. Then: the certificates verify with openssl; the AK is proven bound
 * to the EK again here, independently (a challenge made by this test, answered over xenstore); a
 * vTPM wiped out of band is drift on that member, refused without allowStateReset and certified
 * anew with it; rotation reissues with new serials, the same EKs and no word to the TPM. The
 * stack's secret scan (dispose) checks that no owner auth, SRK auth or CA key is anywhere in
 * plaintext.
 */
import { execFileSync } from "node:child_process";
import { createPublicKey, X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { checkResponse, makeChallenge, parseReport, publicKeyFingerprint } from "../../provider/tpm";
import { startTestLab, type TestLab } from "../support/lab";
import { disposeThen, expectExit, TestStack } from "./pulumi";

jest.setTimeout(20 * 60_000);

const fixture = path.join(__dirname, "fixtures", "identity");
const A = "dom0-a";
const MEMBERS = ["sec-01", "sec-02"];

interface MemberOut {
  domain: string;
  tpm: {
    version: string;
    ekFingerprint: string;
    akFingerprint: string;
    ekCertSerial: string;
    akCertSerial: string;
  };
}
type Certificates = Record<string, { ek: string; ak: string; akPublic: string }>;

describe.each([
  ["1.2", false],
  ["2.0", true],
] as const)("vTPM identities by the system, TPM %s", (version, tpm2) => {
  let lab: TestLab;
  let stack: TestStack;
  let dir: string;

  beforeAll(async () => {
    lab = await startTestLab({ hosts: 1, tpm2 });
    dir = mkdtempSync(path.join(os.tmpdir(), "tvd-identity-"));
    stack = await TestStack.create({
      programDir: fixture,
      config: {
        inventory: { value: path.join(lab.stateDir, "inventory.json") },
        members: { value: String(MEMBERS.length) },
      },
    });
    stack.secrets.watchDom0s(lab); // issue 12.5: its files scanned after each operation
  });

  // dispose scans for secrets in plaintext and fails on a finding; the lab stops whatever it says.
  afterAll(() =>
    disposeThen(stack, async () => {
      rmSync(dir, { recursive: true, force: true });
      await lab?.stop();
    }),
  );

  async function state(): Promise<{ members: Record<string, MemberOut>; certs: Certificates; ca: string }> {
    const o = await stack.outputs();
    return {
      members: o.members as Record<string, MemberOut>,
      certs: o.certificates as Certificates,
      ca: String(o.caCertPem),
    };
  }

  /** `openssl verify` of a certificate against the TVD's CA, as any relying party would. */
  function opensslVerifies(ca: string, cert: string): boolean {
    writeFileSync(path.join(dir, "ca.pem"), ca);
    writeFileSync(path.join(dir, "leaf.pem"), cert);
    try {
      const out = execFileSync("openssl", [
        "verify",
        "-CAfile",
        path.join(dir, "ca.pem"),
        path.join(dir, "leaf.pem"),
      ]);
      return /: OK$/m.test(out.toString());
    } catch {
      return false;
    }
  }

  const xs = (script: string, ...args: string[]) => lab.check(A, script, ...args);
  const report = async (member: string) =>
    xs('xenstore-read "/local/domain/$(xl domid "$1")/data/tvd/report"', member);

  let first: Awaited<ReturnType<typeof state>>;

  it("one up certifies every member's EK and AK under the TVD's CA, and openssl verifies them", async () => {
    expectExit(await stack.up());
    first = await state();
    for (const m of MEMBERS) {
      const member = first.members[m];
      const certs = first.certs[m];
      expect(member.tpm.version).toBe(version);
      expect(opensslVerifies(first.ca, certs.ek)).toBe(true);
      expect(opensslVerifies(first.ca, certs.ak)).toBe(true);
      // Each certificate is for the key the vTPM holds, with the TCG's purpose.
      const ek = new X509Certificate(certs.ek);
      const ak = new X509Certificate(certs.ak);
      expect(publicKeyFingerprint(ek.publicKey)).toBe(member.tpm.ekFingerprint);
      expect(publicKeyFingerprint(ak.publicKey)).toBe(member.tpm.akFingerprint);
      expect(ek.keyUsage).toEqual(["2.23.133.8.1"]);
      expect(ak.keyUsage).toEqual(["2.23.133.8.3"]);
      expect(ek.serialNumber.toLowerCase()).toBe(member.tpm.ekCertSerial);
      // What the agent reports now is what was certified.
      const now = parseReport(await report(m));
      expect(publicKeyFingerprint(now.ek.key)).toBe(member.tpm.ekFingerprint);
    }
    const eks = MEMBERS.map((m) => first.members[m].tpm.ekFingerprint);
    expect(new Set(eks).size).toBe(MEMBERS.length);
    expect((await stack.outputs()).summary).toContain(first.members[MEMBERS[0]].tpm.ekCertSerial);
  });

  it("the AK is bound to the EK: a credential made here for the certified keys comes back", async () => {
    for (const m of MEMBERS) {
      const r = parseReport(await report(m));
      expect(publicKeyFingerprint(r.ak.key)).toBe(first.members[m].tpm.akFingerprint);
      const { challenge, expectedSecret } = makeChallenge(r);
      const answer = await xs(
        `id=$(xl domid "$1"); xenstore-write "/local/domain/$id/data/tvd/challenge" "$2"
for i in $(seq 100); do
  r=$(xenstore-read "/local/domain/$id/data/tvd/response" 2>/dev/null) && case $r in *"$3"*) echo "$r"; exit 0;; esac
  sleep 0.2
done
exit 1`,
        m,
        JSON.stringify(challenge),
        challenge.id,
      );
      expect(checkResponse(challenge, expectedSecret, answer.trim())).toEqual({ ok: true });
      // The AK certified is the key the agent proved: the certificate's key is the reported AK.
      const certified = new X509Certificate(first.certs[m].ak).publicKey;
      expect(certified.equals(createPublicKey(r.ak.key.export({ type: "spki", format: "pem" })))).toBe(true);
    }
  });

  it("preview --refresh right after up shows nothing", async () => {
    expectExit(await stack.preview({ refresh: true, expectNoChanges: true }));
  });

  it("rotation reissues both certificates with new serials, the same EKs, and asks the TPM nothing", async () => {
    const before = await Promise.all(MEMBERS.map(report));
    await stack.setConfig("rotation", "1");
    expectExit(await stack.up());
    const rotated = await state();
    for (const [i, m] of MEMBERS.entries()) {
      expect(rotated.members[m].tpm.ekFingerprint).toBe(first.members[m].tpm.ekFingerprint);
      expect(rotated.members[m].tpm.akFingerprint).toBe(first.members[m].tpm.akFingerprint);
      expect(rotated.members[m].tpm.ekCertSerial).not.toBe(first.members[m].tpm.ekCertSerial);
      expect(rotated.members[m].tpm.akCertSerial).not.toBe(first.members[m].tpm.akCertSerial);
      expect(opensslVerifies(rotated.ca, rotated.certs[m].ek)).toBe(true);
      expect(opensslVerifies(rotated.ca, rotated.certs[m].ak)).toBe(true);
      // No request reached the agent: its last report answers the same token as before.
      expect(await report(m)).toBe(before[i]);
    }
    first = rotated;
  });

  it("a vTPM wiped out of band is drift on that member; up refuses it, then certifies the new EK with allowStateReset", async () => {
    const [wiped, kept] = MEMBERS;
    const vtpm = `${wiped}-vtpm`;
    // The vTPM stops (its state flushed), its image is zeroed, and it starts again: a new TPM.
    await xs(
      'xl destroy "$1" && dd if=/dev/zero of="/var/lib/xen/vtpm/$1.img" bs=1M count=8 conv=notrunc status=none && xl create "/etc/xen/$1.cfg" >/dev/null',
      vtpm,
    );
    // The preview names the member and the fix; nothing is planned until the reset is allowed.
    const refusal = new RegExp(
      `member ${wiped}'s vTPM presents a new identity[\\s\\S]*allowStateReset: true`,
    );
    const preview = await stack.preview({ refresh: true });
    expect(preview.code).not.toBe(0);
    expect(preview.diagnostics.join("\n")).toMatch(refusal);
    expect(preview.diagnostics.join("\n")).not.toContain(`member ${kept}'s`);
    const refused = await stack.up({ refresh: true });
    expect(refused.code).not.toBe(0);
    expect(refused.diagnostics.join("\n")).toMatch(refusal);
    expect((await state()).members[wiped].tpm.ekFingerprint).toBe(first.members[wiped].tpm.ekFingerprint);

    await stack.setConfig("allowStateReset", "true");
    const accepted = await stack.up({ refresh: true });
    expectExit(accepted);
    // A replacement of that member's identity alone: attested and certified anew.
    const replaced = accepted.steps.filter((s) => /replace/.test(s.op)).map((s) => s.name);
    expect(new Set(replaced)).toEqual(new Set([`${wiped}-vtpm-identity`]));
    const reset = await state();
    expect(reset.members[wiped].tpm.ekFingerprint).not.toBe(first.members[wiped].tpm.ekFingerprint);
    expect(reset.members[wiped].tpm.ekCertSerial).not.toBe(first.members[wiped].tpm.ekCertSerial);
    expect(opensslVerifies(reset.ca, reset.certs[wiped].ek)).toBe(true);
    expect(opensslVerifies(reset.ca, reset.certs[wiped].ak)).toBe(true);
    expect(publicKeyFingerprint(new X509Certificate(reset.certs[wiped].ek).publicKey)).toBe(
      reset.members[wiped].tpm.ekFingerprint,
    );
    // The other member kept its identity and its certificates.
    expect(reset.members[kept].tpm).toEqual(first.members[kept].tpm);

    await stack.setConfig("allowStateReset", "false");
    expectExit(await stack.up());
    expectExit(await stack.preview({ refresh: true, expectNoChanges: true }));
  });

  it("destroy leaves nothing of the TVD running", async () => {
    expectExit(await stack.destroy());
    expect((await lab.domainNames(A)).filter((d) => d.startsWith("sec-"))).toEqual([]);
  });
});
