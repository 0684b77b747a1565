/**
 * A vTPM's default UUID: name-based on its owner, so that a create cut off after its config was
 * written (no state kept) is taken up under the same UUID by the next up, never under a new one
 * that would lose the keys bound to the first.
 */
import fc from "fast-check";
import { defaultVtpmUuid, vtpmLifecycle } from "../../provider/resources/vtpm/provider";

const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const connection = { host: "10.0.0.5", privateKey: key, hostKeyFingerprint: "SHA256:" + "a".repeat(43) };
const UUID_V5 = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

async function checkedUuid(olds: Record<string, unknown>, news: Record<string, unknown>) {
  const r = await vtpmLifecycle.check(olds, { connection, name: "web1-vtpm", manager: "vtpmmgr", ...news });
  expect(r.failures ?? []).toEqual([]);
  return r.inputs as Record<string, unknown>;
}

describe("a vTPM's default UUID", () => {
  it("is an RFC 9562 version 5 UUID, the same for one owner and different for two", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.string({ minLength: 1 }), (a, b) => {
        expect(defaultVtpmUuid(a)).toMatch(UUID_V5);
        expect(defaultVtpmUuid(a)).toBe(defaultVtpmUuid(a));
        if (a !== b) expect(defaultVtpmUuid(a)).not.toBe(defaultVtpmUuid(b));
      }),
      { numRuns: 1000 },
    );
  });

  it("is random without an owner (outside a Pulumi program)", () => {
    expect(defaultVtpmUuid(undefined)).not.toBe(defaultVtpmUuid(undefined));
  });

  it("comes out the same from check each time the same resource is created with no state", async () => {
    const owner = "tvd/dev Vtpm web1-vtpm";
    const first = await checkedUuid({}, { owner });
    const again = await checkedUuid({}, { owner });
    expect(first.uuid).toBe(defaultVtpmUuid(owner));
    expect(again.uuid).toBe(first.uuid);
    const other = await checkedUuid({}, { owner: "tvd/prod Vtpm web1-vtpm", name: "web2-vtpm" });
    expect(other.uuid).not.toBe(first.uuid);
  });

  it("never replaces a UUID the state kept (one made at random before) or one declared", async () => {
    const owner = "tvd/dev Vtpm web1-vtpm";
    const kept = "0b9f8e1c-2d3a-4b5c-8d7e-6f5a4b3c2d1e";
    const fromState = await checkedUuid({ defaults: { uuid: kept } }, { owner });
    expect(fromState.uuid).toBe(kept);
    const declared = await checkedUuid({}, { owner, uuid: kept });
    expect(declared.uuid).toBe(kept);
  });
});
