/**
 * Real Xen 4.17 under QEMU (lab/xen), live on every run:
 * 1. the conformance suite: the same xl scenarios on real Xen and on the local lab's emulator,
 *    compared field by field (every difference fixed or listed in lab/conformance/differences.ts),
 *    and real Xen's answers compared with the recording the lab project checks the emulator by;
 * 2. the single-host example (a vTPM manager, three vTPMs, three guests booting a real PV Linux
 *    on their qcow2 overlays) through the real Pulumi CLI: up, each guest's member agent
 *    (tvd-agent) talking to dom0 through real xenstored, no changes, `xl destroy` of a guest
 *    found by `preview --refresh`, repaired by `up`, then destroy.
 * One host serves both, in order: the scenarios start from a dom0 with no domains. This file boots
 * it (about a minute) and powers it off, so QEMU takes its core only while these tests run.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runScenarios } from "../../lab/conformance/run";
import { compareObservations, type Observation } from "../../lab/conformance/scenarios";
import type { XenInventoryHost } from "../../lab/xen/boot";
import { expectExit, stepOf, TestStack } from "../e2e/pulumi";
import { emulatorAgainst } from "../support/conformance";
import { profiled } from "../support/exampleProfile";
import type { LabAccess } from "../support/lab";
import { bootXenTestHost, stopXenTestHost, XEN_TEST_HOST as X, XEN_TEST_STATE } from "../support/xenLab";

jest.setTimeout(30 * 60_000);

let xen: LabAccess<XenInventoryHost>;

beforeAll(async () => {
  xen = await bootXenTestHost();
});

afterAll(async () => stopXenTestHost());

const sh = (script: string, ...args: string[]) => xen.check(X, script, ...args);
const domains = () => xen.domainNames(X);

describe("conformance suite", () => {
  let real: Observation[];

  it("real Xen answers every scenario as recorded in lab/conformance/observed/xen.json", async () => {
    expect(await domains()).toEqual([]);
    const session = await xen.session(X);
    real = await runScenarios(session);
    expect(await domains()).toEqual([]);
    // What this run saw, in the recording's format: the file to copy over the recording when
    // real Xen's answers changed on purpose (a new scenario, another Xen version).
    const xenVersion = (await session.run(["xl", "info", "xen_version"])).stdout.trim();
    writeFileSync(
      path.join(XEN_TEST_STATE, "observed.json"),
      JSON.stringify({ kind: "xen", xenVersion, at: new Date().toISOString(), observations: real }, null, 2) +
        "\n",
    );
    const recorded = JSON.parse(
      readFileSync(path.join(__dirname, "..", "..", "lab", "conformance", "observed", "xen.json"), "utf8"),
    ) as { observations: Observation[] };
    // A difference here means the recording is stale: see test/.work/xen-lab/observed.json.
    expect(compareObservations(real, recorded.observations)).toEqual([]);
  });

  it("the emulator answers as real Xen did just now, but for the differences the docs list", async () => {
    expect(await emulatorAgainst(real)).toEqual({ unlisted: [], gone: [] });
  });
});

describe("the single-host example on real Xen", () => {
  const GUESTS = ["web1", "web2", "db1"];
  const ALL = ["db1", "db1-vtpm", "vtpmmgr", "web1", "web1-vtpm", "web2", "web2-vtpm"];
  let stack: TestStack;
  let uuids: Record<string, string>;
  let stats: string;

  beforeAll(async () => {
    const c = xen.connection(X);
    stats = path.join(mkdtempSync(path.join(os.tmpdir(), "tvd-xen-stats-")), "stats.jsonl");
    stack = await TestStack.create({
      programDir: path.resolve(__dirname, "..", "..", "examples", "single-host"),
      config: {
        host: { value: c.host },
        port: { value: String(c.port) },
        hostKeyFingerprint: { value: c.hostKeyFingerprint },
        privateKey: { value: c.privateKey, secret: true },
        standInStubdoms: { value: "true" },
      },
      env: { PULUMI_TVD_STATS: stats },
    });
  });

  afterAll(async () => stack?.dispose());

  /** Real xl's console log of a domain: what its kernel and init printed. */
  const consoleOf = (domain: string) => sh('cat "/var/log/xen/console/guest-$1.log"', domain);

  it("up starts the manager, each vTPM, then each guest on its own qcow2 overlay", async () => {
    expectExit(await profiled("realXen", "up", stats, () => stack.up()));
    expect(await domains()).toEqual(ALL);
    const members = (await stack.outputs()).members as Record<
      string,
      { vtpmUuid: string; vtpmAttached: boolean }
    >;
    uuids = Object.fromEntries(GUESTS.map((g) => [g, members[g].vtpmUuid]));
    expect(new Set(Object.values(uuids)).size).toBe(3);
    expect(await consoleOf("vtpmmgr")).toContain("Waiting for commands from vTPM's");
    for (const g of GUESTS) {
      expect(members[g].vtpmAttached).toBe(true);
      // Real xl made the vtpm device with the UUID generated once at create, backed by the manager.
      const row = (await sh(`xl vtpm-list ${g}-vtpm`)).split("\n")[1];
      expect(row).toContain(uuids[g]);
      expect(row).toMatch(new RegExp(`^0\\s+${await sh("xl domid vtpmmgr").then((s) => s.trim())}\\s`));
      expect(await sh(`xl vtpm-list ${g}`)).toContain(`/backend/vtpm/`);
      // The guest's disk is its overlay, served by dom0's qdisk backend, and its root is on it.
      expect(await sh(`xl block-list ${g}`)).toContain("/backend/qdisk/");
      const info = JSON.parse(await sh(`qemu-img info --output=json -U /var/lib/xen/images/${g}.qcow2`));
      expect(info).toMatchObject({
        format: "qcow2",
        "backing-filename": "/var/lib/xen/images/debian-base.raw",
      });
      await xen.waitForConsole(
        X,
        g,
        "tvd-guest: up, root /dev/xvda read-write, boot 1 of this disk",
        180_000,
      );
    }
  });

  // The member agent (agent/PROTOCOL.md) in each guest, started by the base image's init on the
  // guest's own /dev/xen/xenbus. No TPM stands behind the stand-in vTPMs (the guests load no
  // xen-tpmfront), so every report has an `error` and no `tpm`: this is the xenstore half of the
  // protocol on real Xen; the TPM half is tested on the local lab, where swtpm backs each vTPM.
  it("each guest's tvd-agent reports on its own xenstore data path and answers dom0's request, on real xenstored", async () => {
    const REPORT_LINE = /^tvd-guest: xenstore writes: ([^\r\n]*)/m;
    await Promise.all(
      GUESTS.map(async (g) => {
        const domid = (await sh("xl domid $1", g)).trim();
        const token = `real-xen-${randomBytes(8).toString("hex")}`;
        // One SSH command per guest: the boot report (waited for: the agent starts as the guest
        // comes up), then a fresh request token and the report that echoes it, and the nodes'
        // owners and permissions as real xenstored keeps them.
        const [boot, answer, ms, ...nodes] = (
          await sh(
            `d=/local/domain/$1/data/tvd
            for i in $(seq 600); do boot=$(xenstore-read $d/report 2>/dev/null) && break; sleep 0.1; done
            t0=$(date +%s%3N)
            xenstore-write $d/request "$2"
            for i in $(seq 200); do
              r=$(xenstore-read $d/report)
              case $r in *"$2"*) break ;; esac
              sleep 0.1
            done
            printf '%s\\n' "$boot" "$r" "$(($(date +%s%3N) - t0))"
            xenstore-ls -p $d`,
            domid,
            token,
          )
        ).split("\n");
        const perms = nodes.filter(Boolean);
        expect(boot).not.toBe(""); // the boot report came within 60 s
        const bootReport = JSON.parse(boot) as Record<string, unknown>;
        expect(bootReport).toMatchObject({ version: 1, request: "boot" });
        expect(bootReport.tpm).toBeUndefined();
        expect(bootReport.error).toMatch(/^TPM \/dev\/tpm0: /);
        // The guest's watch on data/tvd/request fired on dom0's write, and it could write its answer.
        const answered = JSON.parse(answer) as Record<string, unknown>;
        expect(answered).toMatchObject({ version: 1, request: token, error: bootReport.error });
        expect(answered.tpm).toBeUndefined();
        expect(Number(ms)).toBeLessThan(20_000);
        // The report is the guest's node; dom0's request lies in the guest's directory too.
        expect(perms.find((l) => l.startsWith("report ="))).toMatch(new RegExp(`\\(n${domid}[,)]`));
        console.log(`${g} (domain ${domid}): request answered in ${ms} ms; ${perms.join(" | ")}`);
        // Its console: the agent's own line, and what real xenstored let the guest write.
        await xen.waitForConsole(X, g, "tvd-guest: xenstore writes: ", 60_000);
        const log = await consoleOf(g);
        expect(log).toContain("tvd-agent: boot report written");
        // Its own data/ yes (then removed); its own name (dom0's node) and dom0's data/ no, whatever
        // errno real xenstored names (see lab/xen/README.md for what it said).
        const writes = log.match(REPORT_LINE)?.[1] ?? "(no line)";
        expect(writes).toMatch(
          /^data\/tvd-probe OK, name (?!OK,)[A-Z]+, \/local\/domain\/0\/data\/tvd-probe (?!OK$)[A-Z]+$/,
        );
      }),
    );
  });

  it("preview right after up shows no changes", async () => {
    expectExit(
      await profiled("realXen", "previewRefresh", stats, () =>
        stack.preview({ expectNoChanges: true, refresh: true }),
      ),
    );
  });

  it("preview --refresh finds a guest destroyed out of band, on its running property", async () => {
    expect((await xen.xl(X, "destroy", "web2")).exitCode).toBe(0);
    const preview = await stack.preview({ refresh: true });
    expectExit(preview);
    expect(stepOf(preview, "web2", "update").changedInputs).toEqual(["running"]);
    for (const untouched of ["web1", "db1", "vtpmmgr", ...GUESTS.map((g) => `${g}-vtpm`)]) {
      expect(preview.steps.find((s) => s.name === untouched && s.op === "update")).toBeUndefined();
    }
  });

  it("up repairs it: the guest boots again from the same overlay, and nothing is left to change", async () => {
    expectExit(await stack.refresh());
    expectExit(await stack.up());
    expect(await domains()).toEqual(ALL);
    await xen.waitForConsole(
      X,
      "web2",
      "tvd-guest: up, root /dev/xvda read-write, boot 2 of this disk",
      180_000,
    );
    const members = (await stack.outputs()).members as Record<string, { vtpmUuid: string }>;
    for (const g of GUESTS) expect(members[g].vtpmUuid).toBe(uuids[g]);
    expectExit(await stack.preview({ expectNoChanges: true, refresh: true }));
  });

  it("destroy stops every domain in order and leaves only the archived vTPM images", async () => {
    expectExit(await stack.destroy());
    expect(await domains()).toEqual([]);
    // Only the conformance suite's configs are left in /etc/xen; no config points at a missing disk.
    expect(await sh("cd /etc/xen && ls -A -- *.cfg | grep -v '^conf-' || true")).toBe("");
    // Left: the base image, and the conformance suite's overlay and images.
    expect(await sh("ls -A /var/lib/xen/images")).toBe("conf-guest.qcow2\ndebian-base.raw\n");
    expect(await sh("ls -A /var/lib/xen/vtpm | grep -v '^conf-' || true")).toBe("");
    expect(await xen.archivedFiles(X)).toEqual([
      "db1-vtpm.img",
      "vtpmmgr.img",
      "web1-vtpm.img",
      "web2-vtpm.img",
    ]);
  });
});
