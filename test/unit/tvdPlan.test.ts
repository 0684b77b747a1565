import { macFor, planMembers, TvdPlanError, vniFor, type PlanInput } from "../../constructs/plan";

const hosts = [
  { name: "dom0-a", guestMemoryMiB: 4096, reservedMiB: 0 },
  { name: "dom0-b", guestMemoryMiB: 4096, reservedMiB: 0 },
  { name: "dom0-c", guestMemoryMiB: 4096, reservedMiB: 0 },
];
const input = (patch: Partial<PlanInput> = {}): PlanInput => ({
  tvd: "red",
  hosts,
  members: 4,
  memoryMiB: 128,
  vcpus: 1,
  subnet: "10.50.0.0/24",
  vtpmMemoryMiB: 8,
  ...patch,
});

describe("planMembers", () => {
  it("spreads a count of members over the hosts in turn, with predictable names and addresses", () => {
    expect(planMembers(input()).map((m) => [m.domain, m.vtpmDomain, m.host, m.ip])).toEqual([
      ["red-01", "red-01-vtpm", "dom0-a", "10.50.0.10/24"],
      ["red-02", "red-02-vtpm", "dom0-b", "10.50.0.11/24"],
      ["red-03", "red-03-vtpm", "dom0-c", "10.50.0.12/24"],
      ["red-04", "red-04-vtpm", "dom0-a", "10.50.0.13/24"],
    ]);
  });

  it("changes nothing of the others when one member is added or removed", () => {
    const before = planMembers(input({ members: 12 }));
    expect(planMembers(input({ members: 14 })).slice(0, 12)).toEqual(before);
    expect(planMembers(input({ members: 11 }))).toEqual(before.slice(0, 11));
    const list = [{ name: "web" }, { name: "db", host: "dom0-c" }, { name: "cache" }];
    const full = planMembers(input({ members: list }));
    expect(planMembers(input({ members: [list[0], list[2]] }))).toEqual([full[0], full[2]]);
    expect(planMembers(input({ members: [...list, { name: "extra" }] })).slice(0, 3)).toEqual(full);
  });

  it("applies per-member overrides", () => {
    const [m] = planMembers(
      input({ members: [{ name: "db", host: "dom0-b", memoryMiB: 512, vcpus: 2, ip: "10.50.0.99" }] }),
    );
    expect(m).toMatchObject({
      domain: "red-db",
      host: "dom0-b",
      memoryMiB: 512,
      vcpus: 2,
      ip: "10.50.0.99/24",
    });
    expect(m.mac).toBe(macFor("red", "db"));
    expect(m.mac).toMatch(/^00:16:3e:[0-7][0-9a-f](:[0-9a-f]{2}){2}$/);
  });

  it.each<[string, Partial<PlanInput>, RegExp]>([
    [
      "an unknown host",
      { members: [{ name: "x", host: "dom0-z" }] },
      /member "x" names host "dom0-z", which is not one of this tvd's hosts \(dom0-a, dom0-b, dom0-c\); add it to hosts/,
    ],
    ["duplicate names", { members: [{ name: "x" }, { name: "x" }] }, /member name "x" is given twice/],
    [
      "a hostile name",
      { members: [{ name: "x;reboot" }] },
      /member name "x;reboot" must be 1 to 31 lowercase/,
    ],
    [
      "an address outside the subnet",
      { members: [{ name: "x", ip: "10.60.0.5" }] },
      /has ip "10.60.0.5", outside 10.50.0.0\/24/,
    ],
    [
      "an address taken twice",
      {
        members: [
          { name: "x", ip: "10.50.0.5" },
          { name: "y", ip: "10.50.0.5" },
        ],
      },
      /members "x" and "y" would both have address 10.50.0.5; set ip on one of them/,
    ],
    ["a bad subnet", { subnet: "10.50.0.1/24" }, /network.subnet "10.50.0.1\/24" is not an IPv4 network/],
    ["no hosts", { hosts: [] }, /hosts is empty/],
    [
      "a memory size of 0",
      { members: [{ name: "x", memoryMiB: 0 }] },
      /member "x" has memoryMiB 0; give a whole number of MiB >= 1/,
    ],
    [
      "more members than memory",
      { members: 40, memoryMiB: 512 },
      /host "dom0-a" offers 4096 MiB to guests, 0 MiB of it already taken, but this tvd's members there need 7280 MiB/,
    ],
    [
      "memory other TVDs took",
      { hosts: [{ name: "dom0-a", guestMemoryMiB: 1024, reservedMiB: 900 }], members: 1 },
      /900 MiB of it already taken, but this tvd's members there need 136 MiB/,
    ],
  ])("rejects %s, saying what it got and the fix", (_what, patch, message) => {
    expect(() => planMembers(input(patch))).toThrow(TvdPlanError);
    expect(() => planMembers(input(patch))).toThrow(message);
  });

  it("reports every problem at once", () => {
    try {
      planMembers(
        input({ members: [{ name: "x", host: "nowhere" }, { name: "Y" }, { name: "z", memoryMiB: 0 }] }),
      );
      throw new Error("expected a TvdPlanError");
    } catch (e) {
      expect((e as Error).message.split("; ").length).toBeGreaterThanOrEqual(3);
    }
  });

  it("derives a stable VXLAN id per TVD name", () => {
    expect(vniFor("red")).toBe(vniFor("red"));
    expect(vniFor("red")).not.toBe(vniFor("blue"));
    expect(vniFor("red")).toBeGreaterThanOrEqual(4096);
    expect(vniFor("red")).toBeLessThan(16_777_216);
  });
});
