import {
  compareObservations,
  normalizeStderr,
  projectObservation,
  type Observation,
} from "../../lab/conformance/scenarios";

const obs = (id: string, exitCode: number, stderr: string[] = []): Observation => ({
  id,
  exitCode,
  stderr,
  observed: {},
});

describe("conformance observations", () => {
  it("masks domain ids and folds libxl's two cleanup races into one form", () => {
    const a = normalizeStderr(
      [
        "libxl: error: libxl_create.c:1921:domcreate_attach_devices: Domain 7:unable to add vtpm devices",
        "libxl: error: libxl_domain.c:1219:destroy_domid_pci_done: Domain 7:xc_domain_pause failed",
        "libxl: error: libxl_dom.c:37:libxl__domain_type: unable to get domain type for domid=7",
        "libxl: error: libxl_domain.c:1137:domain_destroy_callback: Domain 7:Unable to destroy guest",
      ].join("\n"),
    );
    const b = normalizeStderr(
      [
        "libxl: error: libxl_create.c:1921:domcreate_attach_devices: Domain 9:unable to add vtpm devices",
        "libxl: error: libxl_domain.c:1183:libxl__destroy_domid: Domain 9:Non-existant domain",
        "libxl: error: libxl_domain.c:1137:domain_destroy_callback: Domain 9:Unable to destroy guest",
      ].join("\n"),
    );
    expect(a).toEqual(b);
    expect(b[0]).toContain("Domain <id>:");
  });

  it("keeps the scenario's UUID and masks one libxl made up", () => {
    const row = (uuid: string) =>
      "Idx BE Uuid                                 handle state evt-ch ring-ref BE-path   \n" +
      `0   2  ${uuid}      0     1     -1       -1 /local/domain/2/backend/vtpm/3/0\n`;
    const fixed = projectObservation(["xl", "vtpm-list", "x"], row("ac0a5b9e-cbe2-4c07-b43b-1d69e46fb839"));
    const made = projectObservation(["xl", "vtpm-list", "x"], row("e6886baf-002d-4867-8b4f-4e08be03c7d8"));
    expect((fixed as { rows: Array<{ uuid: string }> }).rows[0].uuid).toBe(
      "ac0a5b9e-cbe2-4c07-b43b-1d69e46fb839",
    );
    expect((made as { rows: Array<{ uuid: string }> }).rows[0].uuid).toBe("<generated>");
  });

  it("reports a field that differs, and a scenario only one side ran", () => {
    expect(compareObservations([obs("a", 0), obs("b", 1)], [obs("a", 3)])).toEqual([
      { scenario: "a", field: "exitCode", emulator: 0, xen: 3 },
      { scenario: "b", field: "exitCode", emulator: 1, xen: null },
    ]);
    expect(compareObservations([obs("a", 0, ["x"])], [obs("a", 0, ["x"])])).toEqual([]);
  });
});
