import { renderSummary, type TvdMemberOutputs } from "../../constructs/trustedVirtualDomain";

const base: TvdMemberOutputs = {
  host: "dom0-a",
  domain: "red-01",
  vtpmUuid: "5b1d7a6e-0c3f-5e1f-a2b9-c4d8e7f60a13",
  ip: "10.50.0.11/24",
  sshHostKeyFingerprint: "SHA256:abc",
  x509Serial: "41aa",
  sshCertSerial: "77",
};

describe("the TVD summary", () => {
  it("shows each member's vTPM identity: TPM version, EK and AK fingerprints, certificate serials", () => {
    const text = renderSummary("red", 4242, [
      {
        ...base,
        tpm: {
          version: "1.2",
          ekFingerprint: "e".repeat(64),
          akFingerprint: "a".repeat(64),
          ekCertSerial: "4e01",
          akCertSerial: "4a01",
        },
      },
    ]);
    const [title, header, row] = text.split("\n");
    expect(title).toBe("TVD red (bridge tvd-red, VXLAN 4242): 1 members");
    expect(header.split(/\s{2,}/)).toEqual([
      "member",
      "host",
      "ip",
      "vTPM uuid",
      "ssh host key",
      "x509 serial",
      "ssh cert serial",
      "tpm",
      "EK",
      "AK",
      "EK cert serial",
      "AK cert serial",
    ]);
    expect(row.split(/\s{2,}/).slice(7)).toEqual([
      "1.2",
      `sha256:${"e".repeat(16)}`,
      `sha256:${"a".repeat(16)}`,
      "4e01",
      "4a01",
    ]);
  });

  it("shows, with measured boot, whether each member is attested and its PCR digest", () => {
    const tpm = {
      version: "2.0" as const,
      ekFingerprint: "e".repeat(64),
      akFingerprint: "a".repeat(64),
      ekCertSerial: "4e01",
      akCertSerial: "4a01",
    };
    const text = renderSummary("red", 4242, [
      { ...base, tpm, attestation: { attested: true, pcrDigest: "d".repeat(64) } },
      { ...base, domain: "red-02", tpm },
    ]);
    const [, header, one, two] = text.split("\n");
    expect(header.split(/\s{2,}/).slice(-2)).toEqual(["attested", "PCR digest"]);
    expect(one.split(/\s{2,}/).slice(-2)).toEqual(["yes", `sha256:${"d".repeat(16)}`]);
    expect(two.split(/\s{2,}/).slice(-2)).toEqual(["-", "-"]);
    expect(renderSummary("red", 4242, [{ ...base, tpm }])).not.toContain("attested");
  });

  it("has no TPM columns when the TVD does not own its members' vTPMs", () => {
    const header = renderSummary("red", 4242, [base]).split("\n")[1];
    expect(header).not.toContain("EK");
  });
});
