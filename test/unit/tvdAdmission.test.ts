/**
 * TrustedVirtualDomain's admission gate under Pulumi's own mocks (issue 16.3): with measuredBoot,
 * each host's TvdNetwork has the holding bridge tvh-<tvd>, every member's vif is declared on it
 * with a port name of its own, and a MemberPort per member waits for its attestation's PCR digest
 * before it moves the port onto the TVD bridge, handing it the TVD's CRL, which revokes every
 * serial no longer among the members'. Without measuredBoot members join the TVD bridge
 * as before and there is no gate.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { portNameFor } from "../../constructs/plan";
import { TrustedVirtualDomain, XenHost, type TrustedVirtualDomainProps } from "../../index";
import { mockEngine, tvdComputedOutputs, type Registered } from "../support/pulumiMocks";

jest.setTimeout(60_000);

const registered: Registered[] = [];
const DIGEST = "d0".repeat(32);
const ATTESTED_AT = "2026-11-30T19:00:00.000Z";
const CRL = "-----BEGIN X509 CRL-----\nMA==\n-----END X509 CRL-----\n";

/** Members whose attestation fails, by domain: what their MemberAttestation reports. */
const failing = new Set<string>();
const REFUSAL = "member red-02 is not admitted to its TVD: PCR 4 is 11, the baseline says 22";

const computedOutputs = tvdComputedOutputs({
  MemberIdentity: (name) => ({ x509Serial: `0a${name.replace(/\D/g, "")}` }),
  VtpmIdentity: (name) => ({
    ekCertSerial: `0c${name.replace(/\D/g, "")}`,
    akCertSerial: `0d${name.replace(/\D/g, "")}`,
  }),
  MemberAttestation: (name) =>
    failing.has(name.replace(/-attestation$/, ""))
      ? { attested: false, pcrDigest: "", attestedAt: ATTESTED_AT, refusal: REFUSAL }
      : { pcrDigest: DIGEST, attestedAt: ATTESTED_AT, refusal: "" },
  TvdRevocationList: () => ({ crlPem: CRL }),
});

let dir: string;
let kernel: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "tvd-admission-"));
  kernel = path.join(dir, "vmlinuz");
  writeFileSync(kernel, "a member kernel");
  return mockEngine(registered, computedOutputs);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => {
  registered.length = 0;
});

const connection = { host: "dom0.example", privateKey: "unused under mocks", hostKeyFingerprint: "SHA256:m" };
const valueOf = <T>(o: pulumi.Output<T>) => new Promise<T>((resolve) => o.apply(resolve));
const ofKind = (kind: string) => registered.filter((r) => r.type.endsWith(`:${kind}`));

let hostCount = 0;
function tvd(props: Partial<TrustedVirtualDomainProps>) {
  const hosts = [0, 1].map(
    (i) =>
      new XenHost(`dom0-${hostCount++}`, { connection, tunnelIp: `10.99.0.${i + 1}`, guestMemoryMiB: 1024 }),
  );
  return new TrustedVirtualDomain("red", {
    hosts,
    template: { baseImage: "/var/lib/xen/images/measured.raw" },
    members: 2,
    ...props,
  });
}

it("with measuredBoot: a holding bridge per host, every vif declared on it by name, a MemberPort per member after its attestation", async () => {
  const red = tvd({ measuredBoot: { kernel, cmdline: "ro" } });
  await valueOf(red.summary);
  // A port registers once its attestation's outputs are known.
  await Promise.all(Object.values(red.memberResources).map((m) => valueOf(m.port!.urn)));
  for (const n of ofKind("TvdNetwork"))
    expect(n.inputs).toMatchObject({ bridge: "tvd-red", holdingBridge: "tvh-red" });
  const guests = ofKind("Guest");
  expect(guests.map((g) => (g.inputs.vifs as unknown[])[0])).toEqual([
    expect.objectContaining({ bridge: "tvh-red", vifname: "tvp-red-01" }),
    expect.objectContaining({ bridge: "tvh-red", vifname: "tvp-red-02" }),
  ]);
  // A member that fails its attestation later has its port held by the attestation itself.
  for (const a of ofKind("MemberAttestation"))
    expect(a.inputs.port).toEqual({
      name: `tvp-${a.name.replace(/-attestation$/, "")}`,
      bridge: "tvd-red",
      holdingBridge: "tvh-red",
    });
  const ports = ofKind("MemberPort");
  expect(ports.map((p) => p.name)).toEqual(["red-01-port", "red-02-port"]);
  for (const p of ports) {
    const domain = p.name.replace(/-port$/, "");
    expect(p.inputs).toMatchObject({
      port: `tvp-${domain}`,
      domain,
      bridge: "tvd-red",
      holdingBridge: "tvh-red",
      admission: DIGEST,
      attestedAt: ATTESTED_AT,
      admitted: true,
      crlPem: CRL,
    });
  }
  // One CRL for the TVD, over every member's certificate serial.
  const [crl] = ofKind("TvdRevocationList");
  expect(crl.name).toBe("red-crl");
  // Every certificate the CA issued each member: X.509, EK and AK; none on hold.
  expect(crl.inputs.memberSerials).toEqual(["0a01", "0c01", "0d01", "0a02", "0c02", "0d02"]);
  expect(crl.inputs.heldSerials).toEqual([]);
  expect(red.revocations).toBeDefined();
  expect(red.memberResources["01"].port).toBeDefined();
});

it("a member failing its attestation: its certificates on hold in the CRL, its port held, and its MemberPort carries the refusal", async () => {
  failing.add("red-02");
  try {
    const red = tvd({ measuredBoot: { kernel, cmdline: "ro" } });
    await valueOf(red.summary);
    await Promise.all(Object.values(red.memberResources).map((m) => valueOf(m.port!.urn)));
    const [crl] = ofKind("TvdRevocationList");
    expect(crl.inputs.heldSerials).toEqual(["0a02", "0c02", "0d02"]);
    const port = (domain: string) => ofKind("MemberPort").find((p) => p.name === `${domain}-port`)!.inputs;
    expect(port("red-02")).toMatchObject({ admitted: false, refusal: REFUSAL });
    expect(port("red-02").admission).toBeUndefined();
    expect(port("red-01")).toMatchObject({ admitted: true, admission: DIGEST, refusal: "" });
    expect(await valueOf(red.summary)).toMatch(/^red-02 .* no {8}-$/m);
  } finally {
    failing.clear();
  }
});

it("without measuredBoot: members join the TVD bridge, no holding bridge, no MemberPort", async () => {
  const plain = tvd({ template: { baseImage: "/b.raw", kernel: "/boot/vmlinuz" } });
  await valueOf(plain.summary);
  expect(ofKind("MemberPort")).toEqual([]);
  expect(ofKind("TvdRevocationList")).toEqual([]);
  for (const n of ofKind("TvdNetwork")) expect(n.inputs.holdingBridge).toBeUndefined();
  expect((ofKind("Guest")[0].inputs.vifs as unknown[])[0]).not.toHaveProperty("vifname");
  expect((ofKind("Guest")[0].inputs.vifs as Array<{ bridge: string }>)[0].bridge).toBe("tvd-red");
});

it("names a member's port tvp-<domain> when it fits in 15 characters, else tvp and 12 hex digits, never vif<N>", () => {
  expect(portNameFor("red-01")).toBe("tvp-red-01");
  expect(portNameFor("abcdefghijk")).toBe("tvp-abcdefghijk");
  const long = portNameFor("abcdefghijk-a-much-longer-member");
  expect(long).toMatch(/^tvp[0-9a-f]{12}$/);
  expect(portNameFor("abcdefghijk-a-much-longer-member")).toBe(long);
  expect(portNameFor("abcdefghijk-another-longer-member")).not.toBe(long);
});
