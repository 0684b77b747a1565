import { domainName, pathUnder, sizeMiB, vtpmUuid } from "../../provider/names";
import { validate } from "../../provider/validation";
import { HOSTILE } from "../support/hostile";

const reason = (schema: Parameters<typeof validate>[0], value: unknown) => {
  const r = validate(schema, value);
  return r.ok ? undefined : r.failures[0].reason;
};

describe("domainName", () => {
  it.each(["vtpmmgr", "web1-vtpm", "db_1.prod", "9lives"])("accepts %s", (n) => {
    expect(reason(domainName, n)).toBeUndefined();
  });

  it.each(HOSTILE.filter((h) => !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(h) || h === ""))(
    "rejects the hostile string %j, saying what is allowed",
    (n) => {
      expect(reason(domainName, n)).toMatch(/must (not be empty|start with a letter or digit)/);
    },
  );

  it("rejects Domain-0 and over-long names", () => {
    expect(reason(domainName, "Domain-0")).toMatch(/dom0 itself/);
    expect(reason(domainName, "a".repeat(65))).toMatch(/at most 64/);
  });
});

describe("pathUnder", () => {
  const schema = pathUnder(["/var/lib/xen", "/srv/vtpm/"]);

  it.each(["/var/lib/xen/vtpm/web1.img", "/srv/vtpm/a/b.img"])("accepts %s", (p) => {
    expect(reason(schema, p)).toBeUndefined();
  });

  it.each([
    ["relative/path.img", /absolute path/],
    ["/var/lib/xen/../../etc/passwd", /'\.\.' components/],
    ["/var/lib/xenolith/x.img", /must be under \/var\/lib\/xen or \/srv\/vtpm\/ \(set allowedRoots/],
    ["/etc/shadow", /must be under/],
    ["/var/lib/xen/a,b.img", /xl disk spec/],
    ["/var/lib/xen/target=x.img", /xl disk spec/],
    ["/var/lib/xen/$(x).img", /xl disk spec/],
    ["/var/lib/xen/a\nb", /NUL or newline/],
  ])("rejects %j", (p, message) => {
    expect(reason(schema, p)).toMatch(message);
  });
});

describe("sizeMiB and vtpmUuid", () => {
  it.each([
    [0, /at least 1 MiB/],
    [-8, /at least 1 MiB/],
    [1.5, /whole number/],
    [1 << 20, /at most 65536/],
  ])("size %p is refused", (n, message) => {
    expect(reason(sizeMiB(65536), n)).toMatch(message);
  });

  it("wants a lowercase UUID and says how to get one generated", () => {
    expect(reason(vtpmUuid, "ac0a5b9e-cbe2-4c07-b43b-1d69e46fb839")).toBeUndefined();
    expect(reason(vtpmUuid, "not-a-uuid")).toMatch(/leave it unset to generate one/);
    expect(reason(vtpmUuid, "AC0A5B9E-CBE2-4C07-B43B-1D69E46FB839")).toMatch(/lowercase/);
  });
});
