/**
 * The program-wide declarations check keeps (provider/core/ownership.ts) index each owner's keys,
 * so that a resource checked again forgets its own in time proportional to them. Whatever the
 * sequence of sets and forgets, it must hold exactly what a plain map scanned on every forget holds.
 */
import fc from "fast-check";
import { OwnedKeys } from "../../provider/core/ownership";

type Op = { op: "set"; key: string; owner: string; role: string } | { op: "forget"; owner: string };

const owners = fc.constantFrom("p/s Vtpm a", "p/s Vtpm b", "p/s Guest a", "q/s Guest a");
const keys = fc.constantFrom("domain:a", "domain:b", "file:/etc/xen/a.cfg", "uuid:1", "bridge:tvd0");
const ops = fc.array(
  fc.oneof(
    fc.record({
      op: fc.constant("set" as const),
      key: keys,
      owner: owners,
      role: fc.constantFrom("domain", "key image"),
    }),
    fc.record({ op: fc.constant("forget" as const), owner: owners }),
  ),
  { maxLength: 60 },
);

test("holds what a scanned map holds, after any sequence of sets and forgets", () => {
  fc.assert(
    fc.property(ops, (sequence: Op[]) => {
      const indexed = new OwnedKeys();
      const scanned = new Map<string, { owner: string; role: string }>();
      for (const o of sequence) {
        if (o.op === "set") {
          indexed.set(o.key, { owner: o.owner, role: o.role });
          scanned.set(o.key, { owner: o.owner, role: o.role });
        } else {
          indexed.forget(o.owner);
          for (const [k, v] of scanned) if (v.owner === o.owner) scanned.delete(k);
        }
        for (const k of ["domain:a", "domain:b", "file:/etc/xen/a.cfg", "uuid:1", "bridge:tvd0"])
          expect(indexed.get(k)).toEqual(scanned.get(k));
      }
    }),
    { numRuns: 500 },
  );
});
