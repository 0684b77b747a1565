/**
 * Pulumi's own mocks (`pulumi.runtime.setMocks`) playing the engine for tests of resources and
 * constructs: every registration is recorded, inputs come back as outputs, and what a provider
 * computes (a CA, a UUID, a fingerprint) is filled in by the test's `computed`, by kind.
 */
import * as pulumi from "@pulumi/pulumi";

export interface Registered {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
}

/** Sets the mocks; each registration is appended to `registered` (empty it between tests). */
export function mockEngine(
  registered: Registered[],
  computed: (kind: string, name: string) => Record<string, unknown>,
): Promise<void> {
  return pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        registered.push({ type: args.type, name: args.name, inputs: args.inputs });
        const kind = args.type.split(":").pop()!;
        return { id: `${args.name}-id`, state: { ...args.inputs, ...computed(kind, args.name) } };
      },
      call: () => {
        throw new Error("no resource of pulumi-tvd calls a provider function");
      },
    },
    "mocked",
    "unit",
  );
}

/** What a kind's provider computes, by resource name: a kind's part of a `computed` table. */
export type ComputedByKind = Readonly<Record<string, (name: string) => Record<string, unknown>>>;

/**
 * What each kind of a TVD computes, as its provider would give it (a UUID, fingerprints, serials,
 * an attestation): one table for every test of the constructs under the mocks. `over` replaces a
 * kind's outputs in part (another TPM version, serials that differ by member).
 */
export function tvdComputedOutputs(
  over: ComputedByKind = {},
): (kind: string, name: string) => Record<string, unknown> {
  const base: ComputedByKind = {
    Vtpm: (name) => ({ uuid: `uuid-of-${name}`, running: true, domid: 7 }),
    TvdAuthority: (name) => ({
      caCertPem: `ca of ${name}`,
      caSerial: "01",
      sshCaPublicKey: `ssh-ed25519 ca-of-${name}`,
    }),
    MemberIdentity: (name) => ({
      sshHostKeyFingerprint: `SHA256:${name}`,
      x509Serial: "0a",
      sshCertSerial: "0b",
    }),
    VtpmIdentity: (name) => ({
      tpmVersion: "1.2",
      ekFingerprint: "ee".repeat(32),
      akFingerprint: "aa".repeat(32),
      akPublic: `ak-of-${name}`,
      ekCertSerial: "0c",
      akCertSerial: "0d",
    }),
    SeedImage: (name) => ({ path: `/var/lib/xen/images/${name}.img` }),
    MemberAttestation: () => ({
      attested: true,
      pcrDigest: "d0".repeat(32),
      pcrs: {},
      attestedAt: "2026-11-30T00:00:00.000Z",
    }),
    TvdRevocationList: () => ({ crlPem: "-----BEGIN X509 CRL-----\nMA==\n-----END X509 CRL-----\n" }),
  };
  return (kind, name) => ({ ...base[kind]?.(name), ...over[kind]?.(name) });
}
