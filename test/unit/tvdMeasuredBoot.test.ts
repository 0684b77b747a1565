/**
 * TrustedVirtualDomain with measuredBoot (issue 16) under Pulumi's own mocks: members render as
 * pv-grub guests reading the declared menu.lst, each gets a MemberAttestation after its
 * VtpmIdentity (its guest, TPM version and AK are that identity's outputs) with the baseline
 * computed from the files declared, and the summary and diagram show each member attested. What
 * cannot work is refused by the constructor, naming the property, the value and the fix; without
 * measuredBoot nothing changes.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { pvGrubBaseline, TrustedVirtualDomain, XenHost, type TrustedVirtualDomainProps } from "../../index";
import { mockEngine, tvdComputedOutputs, type Registered } from "../support/pulumiMocks";

jest.setTimeout(60_000);

const registered: Registered[] = [];

const computedOutputs = tvdComputedOutputs({ VtpmIdentity: () => ({ tpmVersion: "2.0" }) });

let dir: string;
let kernel: string;
let initrd: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "tvd-measured-"));
  kernel = path.join(dir, "vmlinuz");
  initrd = path.join(dir, "initrd.img");
  writeFileSync(kernel, "\x7fELF a member kernel");
  writeFileSync(initrd, "an initrd");
  return mockEngine(registered, computedOutputs);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => {
  registered.length = 0;
});

const connection = { host: "dom0.example", privateKey: "unused under mocks", hostKeyFingerprint: "SHA256:m" };
const valueOf = <T>(o: pulumi.Output<T>) => new Promise<T>((resolve) => o.apply(resolve));
const ofKind = (kind: string) => registered.filter((r) => r.type.endsWith(`:${kind}`));
const unsecret = (v: unknown) =>
  v && typeof v === "object" && "value" in (v as object) ? (v as { value: unknown }).value : v;

let hostCount = 0;
function tvd(props: Partial<TrustedVirtualDomainProps>) {
  const host = new XenHost(`dom0-${hostCount++}`, {
    connection,
    tunnelIp: "10.99.0.1",
    guestMemoryMiB: 1024,
  });
  return new TrustedVirtualDomain("red", {
    hosts: [host],
    template: { baseImage: "/var/lib/xen/images/measured.raw" },
    members: 2,
    ...props,
  });
}

it("renders members as pv-grub guests and attests each after its VtpmIdentity, against the baseline of the files", async () => {
  const red = tvd({
    measuredBoot: { kernel, initrd, cmdline: "root=/dev/xvda ro", menuLst: "(hd0)/boot/grub/menu.lst" },
  });
  const summary = await valueOf(red.summary);
  const diagram = await valueOf(red.diagram);
  const expected = pvGrubBaseline({ kernel, initrd, cmdline: "root=/dev/xvda ro" });
  expect(red.baseline).toEqual(expected);

  const guests = ofKind("Guest");
  expect(guests).toHaveLength(2);
  for (const g of guests) {
    expect(g.inputs.bootLoader).toBe("pvgrub");
    expect(g.inputs.cmdline).toBe("(hd0)/boot/grub/menu.lst");
    expect(g.inputs.kernel).toBeUndefined();
  }
  const attestations = ofKind("MemberAttestation");
  expect(attestations.map((a) => a.name).sort()).toEqual(["red-01-attestation", "red-02-attestation"]);
  for (const a of attestations) {
    const member = a.name.replace(/-attestation$/, "");
    // The identity's outputs: the engine orders the attestation after the VtpmIdentity.
    expect(a.inputs.guest).toBe(member);
    expect(a.inputs.tpmVersion).toBe("2.0");
    expect(a.inputs.akPublic).toBe(`ak-of-${member}-vtpm-identity`);
    expect(a.inputs.baseline).toEqual(expected);
    expect(unsecret(a.inputs.connection)).toMatchObject({ host: "dom0.example" });
  }
  const members = await valueOf(red.members);
  expect(members["red-01"].attestation).toEqual({ attested: true, pcrDigest: "d0".repeat(32) });
  expect(summary.split("\n")[1]).toMatch(/attested\s+PCR digest$/);
  expect(summary).toContain(`yes       sha256:${"d0".repeat(8)}`);
  expect(diagram).toContain(":::attested");
});

it("uses pv-grub's own menu.lst by default; without measuredBoot there is no attestation and the template boots", async () => {
  await valueOf(tvd({ measuredBoot: { kernel, cmdline: "ro" } }).summary);
  expect(ofKind("Guest")[0].inputs.cmdline).toBe("(hd0,0)/boot/grub/menu.lst");
  registered.length = 0;
  const plain = tvd({ template: { baseImage: "/b.raw", kernel: "/boot/vmlinuz", cmdline: "ro" } });
  await valueOf(plain.summary);
  expect(ofKind("MemberAttestation")).toEqual([]);
  expect(ofKind("Guest")[0].inputs).toMatchObject({ kernel: "/boot/vmlinuz", cmdline: "ro" });
  expect(await valueOf(plain.summary)).not.toContain("attested");
});

it("refuses what cannot work, every problem at once, naming the property, the value and the fix", () => {
  expect(() =>
    tvd({
      template: { baseImage: "/b.raw", kernel: "/boot/vmlinuz", bootLoader: "direct" },
      vtpmIdentity: false,
      measuredBoot: {
        kernel: path.join(dir, "missing"),
        cmdline: "ro",
        menuLst: "/boot/grub/menu.lst",
        pcrs: { 5: "00".repeat(20) },
        quoteTimeoutSec: 0,
      },
    }),
  ).toThrow(
    new RegExp(
      [
        "measuredBoot needs vtpmIdentity",
        'template.bootLoader "direct" cannot be set with measuredBoot.*remove template.bootLoader',
        'template.kernel "/boot/vmlinuz" cannot be set with measuredBoot',
        'measuredBoot.menuLst "/boot/grub/menu.lst" is not a GRUB path such as "\\(hd0,0\\)/boot/grub/menu.lst"',
        "measuredBoot.quoteTimeoutSec 0 must be a whole number of seconds from 1 to 3600",
        `measuredBoot.kernel "${path.join(dir, "missing")}" cannot be read \\(ENOENT\\)`,
        `measuredBoot.pcrs\\["5"\\] is pv-grub's own PCR`,
      ].join(".*"),
    ),
  );
});
