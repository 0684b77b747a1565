/**
 * ThreeTierTvd under Pulumi's mocks (`pulumi.runtime.setMocks`): the resources it declares through
 * pulumi-tvd (names, sizes, each tier's members and where they run) and the policy's refusals,
 * which come before any resource is declared. No host is contacted.
 */
import { beforeAll, beforeEach, describe, expect, it, jest } from "@jest/globals";
import * as pulumi from "@pulumi/pulumi";
import { XenHost } from "pulumi-tvd";
import { PRESETS, ThreeTierTvd, type ThreeTierTvdProps } from "../src";

jest.setTimeout(60_000);

interface Declared {
  readonly kind: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
}
let declared: Declared[] = [];

/** The outputs pulumi-tvd's providers compute that the TVD's member table reads. */
const computed: Record<string, (name: string) => Record<string, unknown>> = {
  Vtpm: (name) => ({ uuid: `uuid-${name}` }),
  MemberIdentity: (name) => ({
    sshHostKeyFingerprint: `SHA256:${name}`,
    x509Serial: "01",
    sshCertSerial: "02",
  }),
  VtpmIdentity: () => ({
    tpmVersion: "1.2",
    ekFingerprint: "e".repeat(64),
    akFingerprint: "a".repeat(64),
    ekCertSerial: "03",
    akCertSerial: "04",
  }),
};

beforeAll(() =>
  pulumi.runtime.setMocks(
    {
      newResource: ({ type, name, inputs }) => {
        const kind = type.split(":").pop()!;
        declared.push({ kind, name, inputs });
        return { id: `${name}-id`, state: { ...inputs, ...computed[kind]?.(name) } };
      },
      call: ({ inputs }) => inputs,
    },
    "shop-app",
    "unit",
  ),
);

beforeEach(() => {
  declared = [];
});

const hosts = () =>
  ["a", "b"].map(
    (n, i) =>
      new XenHost(`dom0-${n}`, {
        connection: {
          host: `dom0-${n}.acme.internal`,
          privateKey: "unused under mocks",
          hostKeyFingerprint: "SHA256:x",
        },
        tunnelIp: `10.99.0.${i + 1}`,
        guestMemoryMiB: 32_768,
      }),
  );

const props = (over: Partial<ThreeTierTvdProps> = {}): ThreeTierTvdProps => ({
  team: "shop",
  env: "dev",
  size: "small",
  hosts: hosts(),
  image: { baseImage: "/var/lib/xen/images/debian-base.raw", kernel: "/usr/lib/xen/boot/vmlinuz" },
  ...over,
});

const value = <T>(o: pulumi.Output<T>) => new Promise<T>((resolve) => o.apply(resolve));
const of = (kind: string) => declared.filter((d) => d.kind === kind);
const names = (kind: string) =>
  of(kind)
    .map((d) => d.name)
    .sort();

describe("ThreeTierTvd", () => {
  it("small: one TVD <team><env>, one member per tier named <team><env>-<tier>-<n>, sized by the preset", async () => {
    const app = new ThreeTierTvd("shop", props());
    const members = await value(app.members);
    expect(names("ThreeTierTvd")).toEqual(["shop"]);
    expect(names("TrustedVirtualDomain")).toEqual(["shopdev"]);
    expect(names("TvdNetwork")).toEqual(["shopdev-net-dom0-a", "shopdev-net-dom0-b"]);
    expect(of("TvdNetwork")[0].inputs.bridge).toBe("tvd-shopdev");
    expect(names("Guest")).toEqual(["shopdev-app-1", "shopdev-db-1", "shopdev-web-1"]);
    expect(names("Vtpm")).toEqual(["shopdev-app-1-vtpm", "shopdev-db-1-vtpm", "shopdev-web-1-vtpm"]);
    expect(names("VtpmIdentity")).toHaveLength(3);
    const guest = (n: string) => of("Guest").find((d) => d.name === n)!.inputs;
    expect(guest("shopdev-web-1")).toMatchObject({ memoryMiB: 64, vcpus: 1 });
    expect(guest("shopdev-db-1")).toMatchObject({ memoryMiB: 128, vcpus: 1 });
    for (const v of of("Vtpm")) expect(v.inputs.imageSizeMiB).toBe(8);
    expect(app.tiers).toEqual({ web: ["shopdev-web-1"], app: ["shopdev-app-1"], db: ["shopdev-db-1"] });
    // Each tier has its own block of addresses; each tier's first member on another host.
    expect(members["shopdev-web-1"]).toMatchObject({ ip: "10.60.0.10/24", host: "dom0-a" });
    expect(members["shopdev-app-1"]).toMatchObject({ ip: "10.60.0.40/24", host: "dom0-b" });
    expect(members["shopdev-db-1"]).toMatchObject({ ip: "10.60.0.70/24", host: "dom0-a" });
    expect(members["shopdev-web-1"].vtpmUuid).toBe("uuid-shopdev-web-1-vtpm");
    expect(await value(app.summary)).toContain("TVD shopdev (bridge tvd-shopdev");
  });

  it("medium and large: the preset's member counts, memory, vCPUs and vTPM size; a tier's replicas on different hosts", async () => {
    for (const size of ["medium", "large"] as const) {
      declared = [];
      const app = new ThreeTierTvd(`shop-${size}`, props({ env: "prod", size }));
      await value(app.members);
      const preset = PRESETS[size];
      for (const tier of ["web", "app", "db"] as const) {
        const tierGuests = of("Guest").filter((d) => d.name.startsWith(`shopprod-${tier}-`));
        expect(tierGuests).toHaveLength(preset.tiers[tier].members);
        for (const g of tierGuests) {
          expect(g.inputs.memoryMiB).toBe(preset.tiers[tier].memoryMiB);
          expect(g.inputs.vcpus).toBe(preset.tiers[tier].vcpus);
        }
        expect(app.tiers[tier]).toEqual(
          Array.from({ length: preset.tiers[tier].members }, (_, i) => `shopprod-${tier}-${i + 1}`),
        );
      }
      for (const v of of("Vtpm")) expect(v.inputs.imageSizeMiB).toBe(preset.vtpmImageSizeMiB);
      const members = await value(app.members);
      expect(members["shopprod-web-1"].host).not.toBe(members["shopprod-web-2"].host);
      expect(members["shopprod-app-2"].ip).toBe("10.60.0.41/24");
    }
  });

  it("takes a tier's override over the preset, and another subnet", async () => {
    const app = new ThreeTierTvd(
      "shop",
      props({ tiers: { db: { members: 2, memoryMiB: 512 } }, subnet: "10.70.1.0/24" }),
    );
    const members = await value(app.members);
    expect(app.tiers.db).toEqual(["shopdev-db-1", "shopdev-db-2"]);
    expect(of("Guest").find((d) => d.name === "shopdev-db-2")!.inputs.memoryMiB).toBe(512);
    expect(members["shopdev-db-2"].ip).toBe("10.70.1.71/24");
  });

  it.each([
    [
      { team: "Shop-Team" },
      'three-tier tvd "shop": team "Shop-Team" must be 2 to 8 lowercase letters and digits starting with a letter (with env "dev", the TVD name <team><env> has at most 11 characters); use the team\'s short name, e.g. "shop"',
    ],
    [
      { team: "checkout", env: "stage" as const },
      'team "checkout" must be 2 to 6 lowercase letters and digits starting with a letter (with env "stage"',
    ],
    [
      { env: "production" as never },
      'env "production" is not one of dev, test, stage, prod; use one of them (it is the end of every name: <team><env>-<tier>-<n>)',
    ],
    [
      { size: "huge" as never },
      'size "huge" is not one of small, medium, large; pick one of them and override tiers where needed',
    ],
    [
      { tiers: { web: { members: 0 } } },
      "tiers.web.members 0 must be a whole number from 1 to 30; fix the override or leave it out for the preset's 1",
    ],
    [{ subnet: "10.60.0.0/28" }, 'subnet "10.60.0.0/28" is not an IPv4 network from /16 to /24'],
  ])(
    "refuses %j before declaring any resource, naming the property, the value and the fix",
    (bad, message) => {
      const p = props(bad as Partial<ThreeTierTvdProps>);
      declared = [];
      expect(() => new ThreeTierTvd("shop", p)).toThrow(message);
      expect(declared).toEqual([]);
    },
  );

  it("lists every problem at once", () => {
    const p = props({ team: "9lives", env: "qa" as never });
    expect(() => new ThreeTierTvd("shop", p)).toThrow(/env "qa" is not one of .*; team "9lives" must be/);
  });
});
