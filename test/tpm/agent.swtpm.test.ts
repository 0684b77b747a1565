/**
 * provider/tpm with the member agent (agent/bin/tvd-agent, `bash agent/build`) on a real TPM
 * 1.2 and TPM 2.0 (swtpm): the report the agent prints parses, a challenge made here is
 * answered with its secret, and a challenge for a key that is not the AK is refused.
 */
import { randomBytes } from "node:crypto";
import {
  checkResponse,
  makeChallenge,
  makeTpm12Credential,
  makeTpm2Credential,
  parseReport,
  publicKeyFingerprint,
  type Challenge,
  type MemberReport,
} from "../../provider/tpm";
import { identityDrift } from "../../provider/resources/vtpmIdentity/provider";
import type { VtpmIdentityExtra } from "../../provider/resources/vtpmIdentity/args";
import { agent, requireAgent, startMember, type Member } from "../support/member";

jest.setTimeout(120_000);

requireAgent();

async function report(member: Member): Promise<MemberReport> {
  return parseReport(await agent(member, "report"));
}

async function activate(member: Member, challenge: Challenge): Promise<string> {
  return agent(member, "activate", challenge);
}

describe.each(["1.2", "2.0"] as const)("tvd-agent on TPM %s", (version) => {
  let member: Member;
  let first: MemberReport;

  beforeAll(async () => {
    member = await startMember(version);
    first = await report(member);
  });

  afterAll(async () => {
    await member?.tpm.stop();
  });

  test("the report parses, and a second report shows the same keys", async () => {
    expect(first.tpm).toBe(version);
    for (const key of [first.ek, first.srk, first.ak]) {
      expect(key.tpm).toBe(version);
      expect(key.key.asymmetricKeyDetails).toMatchObject({ modulusLength: 2048, publicExponent: 65537n });
    }
    const again = await report(member);
    expect(publicKeyFingerprint(again.ek.key)).toBe(publicKeyFingerprint(first.ek.key));
    expect(publicKeyFingerprint(again.ak.key)).toBe(publicKeyFingerprint(first.ak.key));
  });

  test("a challenge made here is answered with its secret", async () => {
    const { challenge, expectedSecret } = makeChallenge(first);
    const response = await activate(member, challenge);
    expect(checkResponse(challenge, expectedSecret, response)).toEqual({ ok: true });
  });

  test("the response to one challenge does not pass for another", async () => {
    const one = makeChallenge(first);
    const other = makeChallenge(first);
    const response = await activate(member, one.challenge);
    const check = checkResponse(other.challenge, other.expectedSecret, response);
    expect(check).toEqual({ ok: false, reason: expect.stringMatching(/^response\.id is /) });
  });

  test("a credential for a key that is not the AK (the SRK) is refused", async () => {
    const secret = randomBytes(32);
    const id = randomBytes(16).toString("hex");
    let challenge: Challenge;
    if (first.ek.tpm === "2.0" && first.srk.tpm === "2.0") {
      const c = makeTpm2Credential({ ek: first.ek, akName: first.srk.name, secret });
      challenge = {
        id,
        tpm: "2.0",
        credentialBlob: c.credentialBlob.toString("base64"),
        encryptedSecret: c.encryptedSecret.toString("base64"),
      };
    } else if (first.ek.tpm === "1.2" && first.srk.tpm === "1.2") {
      const c = makeTpm12Credential({ ek: first.ek, aik: first.srk, secret });
      challenge = { id, tpm: "1.2", asym: c.asym.toString("base64"), sym: c.sym.toString("base64") };
    } else {
      throw new Error("mixed TPM versions in one report");
    }
    const check = checkResponse(challenge, secret, await activate(member, challenge));
    expect(check).toEqual({
      ok: false,
      reason: expect.stringMatching(/^the agent could not activate the credential: /),
    });
  });

  test("VtpmIdentity's drift check: the same TPM is the identity certified; a wiped one presents another EK", async () => {
    const certified = {
      tpmVersion: first.tpm,
      ekFingerprint: publicKeyFingerprint(first.ek.key),
      akFingerprint: publicKeyFingerprint(first.ak.key),
    } as VtpmIdentityExtra;
    expect(identityDrift(certified, await report(member))).toBeUndefined();
    // A fresh TPM state is what a wiped vTPM image gives: a new EK.
    const wiped = await startMember(version);
    try {
      expect(identityDrift(certified, await report(wiped))).toMatch(
        /^its vTPM presents another EK \(sha256:[0-9a-f]{16}, certified sha256:[0-9a-f]{16}\): it was wiped or reset$/,
      );
    } finally {
      await wiped.tpm.stop();
    }
    const otherVersion = { ...certified, tpmVersion: version === "1.2" ? "2.0" : "1.2" } as VtpmIdentityExtra;
    expect(identityDrift(otherVersion, first)).toMatch(/^its vTPM is now a TPM /);
  });

  if (version === "1.2") {
    test("TPM 1.2: a session key in OFB mode works too", async () => {
      if (first.ek.tpm !== "1.2" || first.ak.tpm !== "1.2") throw new Error("not a TPM 1.2 report");
      const secret = randomBytes(32);
      const c = makeTpm12Credential({ ek: first.ek, aik: first.ak, secret, mode: "ofb" });
      const challenge: Challenge = {
        id: "0f",
        tpm: "1.2",
        asym: c.asym.toString("base64"),
        sym: c.sym.toString("base64"),
      };
      expect(checkResponse(challenge, secret, await activate(member, challenge))).toEqual({ ok: true });
    });
  }
});
