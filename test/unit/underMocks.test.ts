/**
 * Every resource kind and both constructs construct under Pulumi's own mocks
 * (`pulumi.runtime.setMocks`), as a team's unit tests of a construct built on pulumi-tvd run them
 * (examples/team-package): each registers with its type and inputs, its dynamic provider
 * serializes (the object Pulumi stores in state, loading the lifecycle from `pulumi-tvd/runtime`
 * at call time) and nothing contacts a host. The mocks play the engine: inputs come back as
 * outputs, and what a provider computes (a CA, a UUID, a fingerprint) is filled in by kind.
 */
import * as pulumi from "@pulumi/pulumi";
import {
  Guest,
  HostFacts,
  MemberIdentity,
  SeedImage,
  TrustedVirtualDomain,
  TvdAuthority,
  TvdNetwork,
  Vtpm,
  VtpmIdentity,
  VtpmManager,
  XenHost,
} from "../../index";
import { mockEngine, tvdComputedOutputs, type Registered } from "../support/pulumiMocks";

jest.setTimeout(60_000);

const registered: Registered[] = [];

/** What each kind's provider computes beyond its inputs, as a deployed stack would hold it. */
const computedOutputs = tvdComputedOutputs();

beforeAll(() => mockEngine(registered, computedOutputs));

beforeEach(() => {
  registered.length = 0;
});

const connection = {
  host: "dom0.example",
  privateKey: "not a key: nothing connects under mocks",
  hostKeyFingerprint: "SHA256:mocked",
};

/** A value once the mocked engine resolved it. */
const valueOf = <T>(o: pulumi.Output<T>) => new Promise<T>((resolve) => o.apply(resolve));

it("declares every resource kind, each with its serialized provider and its connection as a secret", async () => {
  const facts = new HostFacts("facts", { connection });
  const manager = new VtpmManager("mgr", { connection, name: "vtpmmgr" });
  const vtpm = new Vtpm("web-vtpm", { connection, name: "web-vtpm", manager });
  const authority = new TvdAuthority("ca", { tvdName: "red" });
  const identity = new MemberIdentity("web-identity", { authority, memberName: "web", hostnames: ["web"] });
  const seed = new SeedImage("web-seed", { connection, name: "web", seed: { hostname: "web" } });
  const network = new TvdNetwork("net", { connection, bridge: "tvd-red", vni: 4242, localIp: "10.99.0.1" });
  const guest = new Guest("web", {
    connection,
    name: "web",
    baseImage: "/var/lib/xen/images/base.raw",
    vtpm,
  });
  const vtpmIdentity = new VtpmIdentity("web-vtpm-identity", { connection, guest, authority });
  const all = [facts, manager, vtpm, authority, identity, seed, network, guest, vtpmIdentity];
  await Promise.all(all.map((r) => valueOf(r.id)));

  const kinds = registered.map((r) => r.type).sort();
  expect(kinds).toEqual(
    [
      "HostFacts",
      "VtpmManager",
      "Vtpm",
      "TvdAuthority",
      "MemberIdentity",
      "SeedImage",
      "TvdNetwork",
      "Guest",
      "VtpmIdentity",
    ]
      .map((k) => `pulumi-nodejs:dynamic/pulumi-tvd:${k}`)
      .sort(),
  );
  for (const r of registered) {
    // The provider Pulumi stores in state: a closure that loads the lifecycle when it is called.
    expect(r.inputs.__provider).toEqual(expect.stringContaining('require("pulumi-tvd/runtime")'));
    expect(r.inputs.owner).toBe(`mocked/unit ${r.type.split(":").pop()} ${r.name}`);
  }
  // The guest and the identity name what they depend on by its output, so the engine orders them.
  expect(registered.find((r) => r.name === "web")?.inputs.vtpm).toBe("web-vtpm");
  expect(registered.find((r) => r.name === "web-vtpm")?.inputs.manager).toBe("vtpmmgr");
  const { connection: stored } = seed as unknown as { connection: pulumi.Output<unknown> };
  expect(await pulumi.isSecret(stored)).toBe(true);
  expect(await valueOf(vtpm.uuid)).toBe("uuid-of-web-vtpm");
  expect(await valueOf(facts.urn)).toBe(
    "urn:pulumi:unit::mocked::pulumi-nodejs:dynamic/pulumi-tvd:HostFacts::facts",
  );
});

it("captures no promise stacks while it registers, and leaves the program's stack trace limit as it was", async () => {
  const limit = Error.stackTraceLimit;
  const limitsSeen: number[] = [];
  const vtpm = new Vtpm(
    "limit-vtpm",
    { connection, name: "limit-vtpm", manager: "vtpmmgr" },
    {
      // Transformations run inside the registration, as Pulumi's own code there does.
      transformations: [
        () => {
          limitsSeen.push(Error.stackTraceLimit);
          return undefined;
        },
      ],
    },
  );
  expect(limitsSeen).toEqual([0]);
  expect(Error.stackTraceLimit).toBe(limit);
  expect(await valueOf(vtpm.uuid)).toBe("uuid-of-limit-vtpm");
  const stored = registered.find((r) => r.name === "limit-vtpm");
  expect(stored?.inputs.__provider).toEqual(expect.stringContaining(`lifecycle("Vtpm")`));
});

it("gives an error Pulumi throws while registering a stack trace into the program", () => {
  const limit = Error.stackTraceLimit;
  let thrown: unknown;
  try {
    new Vtpm(
      "bad-parent-vtpm",
      { connection, name: "bad-parent-vtpm", manager: "vtpmmgr" },
      {
        parent: {} as unknown as pulumi.Resource,
      },
    );
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(Error);
  expect((thrown as Error).message).toContain("Resource parent is not a valid Resource");
  // This test's own frame, where the resource was declared.
  expect((thrown as Error).stack).toContain("underMocks.test.ts");
  expect(Error.stackTraceLimit).toBe(limit);
});

it("builds XenHost and TrustedVirtualDomain: hosts, managers, networks, five resources per member, the summary", async () => {
  const hosts = ["a", "b"].map(
    (n, i) =>
      new XenHost(`dom0-${n}`, {
        connection: { ...connection, host: `dom0-${n}.example` },
        tunnelIp: `10.99.0.${i + 1}`,
        guestMemoryMiB: 1024,
      }),
  );
  const tvd = new TrustedVirtualDomain("red", {
    hosts,
    template: { baseImage: "/var/lib/xen/images/base.raw", kernel: "/boot/vmlinuz", vtpmImageSizeMiB: 16 },
    members: 3,
  });
  const summary = await valueOf(tvd.summary);

  const byType = (kind: string) =>
    registered
      .filter((r) => r.type.endsWith(`:${kind}`))
      .map((r) => r.name)
      .sort();
  expect(byType("XenHost")).toEqual(["dom0-a", "dom0-b"]);
  expect(byType("TrustedVirtualDomain")).toEqual(["red"]);
  expect(byType("VtpmManager")).toEqual(["dom0-a-vtpmmgr", "dom0-b-vtpmmgr"]);
  expect(byType("TvdNetwork")).toEqual(["red-net-dom0-a", "red-net-dom0-b"]);
  expect(byType("TvdAuthority")).toEqual(["red-authority"]);
  expect(byType("Guest")).toEqual(["red-01", "red-02", "red-03"]);
  expect(byType("Vtpm")).toEqual(["red-01-vtpm", "red-02-vtpm", "red-03-vtpm"]);
  expect(byType("MemberIdentity")).toHaveLength(3);
  expect(byType("SeedImage")).toHaveLength(3);
  expect(byType("VtpmIdentity")).toHaveLength(3);
  // The template's vTPM size reaches every member's Vtpm.
  for (const r of registered.filter((x) => x.type.endsWith(":Vtpm"))) expect(r.inputs.imageSizeMiB).toBe(16);
  expect(summary).toContain("TVD red (bridge tvd-red");
  expect(summary).toMatch(/red-02\s+dom0-b\s+10\.50\.0\.11\/24\s+uuid-of-red-02-vtpm/);
});

it("refuses a vTPM image size it cannot make, naming the value and the fix", () => {
  const host = new XenHost("dom0-a", { connection, tunnelIp: "10.99.0.1", guestMemoryMiB: 1024 });
  expect(
    () =>
      new TrustedVirtualDomain("blue", {
        hosts: [host],
        template: {
          baseImage: "/var/lib/xen/images/base.raw",
          kernel: "/boot/vmlinuz",
          vtpmImageSizeMiB: 0.5,
        },
        members: 1,
      }),
  ).toThrow(
    'trusted virtual domain "blue": template.vtpmImageSizeMiB 0.5 must be a whole number of MiB from 1 to 1024; leave it out for 8',
  );
});
