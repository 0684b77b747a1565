/**
 * The pure part of examples/gitops/drift-check.mjs: the preview's JSON in, the markdown report
 * and the exit code out. Hostile names and values (pipes, line breaks, backticks) are rendered
 * through a real GFM parser (marked) and must come back as exactly the cells meant; secrets
 * never appear. The report the README shows is what the renderer makes of the captured preview.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import fc from "fast-check";

const repoRoot = path.resolve(__dirname, "..", "..");

interface DriftRow {
  resource: string;
  type: string;
  name: string;
  property: string;
  declared: string;
  host: string;
}
interface DriftReport {
  stack: string;
  outcome: "no-drift" | "drift" | "error";
  rows: DriftRow[];
  errors: string[];
  resourcesChecked: number;
}
interface DriftCheck {
  EXIT_NO_DRIFT: number;
  EXIT_DRIFT: number;
  EXIT_ERROR: number;
  parsePropertyPath(p: string): (string | number)[];
  formatPropertyPath(steps: (string | number)[]): string;
  parseEvents(stdout: string): Array<Record<string, unknown>>;
  assessPreview(
    run: { stack: string; exitCode: number | null; stdout: string; stderr: string },
    hide?: string[],
  ): DriftReport;
  exitCodeOf(report: DriftReport): number;
  renderReport(report: DriftReport): string;
  redact(text: string, hide?: string[]): string;
  parseArgs(argv: string[]): { stack: string; cwd: string; report?: string; passthrough: string[] };
}
interface MarkedToken {
  type: string;
  text?: string;
  tokens?: MarkedToken[];
  header?: Array<{ tokens: MarkedToken[] }>;
  rows?: Array<Array<{ tokens: MarkedToken[] }>>;
}

// The script is plain ESM that users copy, and marked is ESM: both are loaded by Node's own
// require (which loads ES modules since Node 22.12), not Jest's.
const nodeRequire = process.getBuiltinModule("node:module").createRequire(__filename);
const check = nodeRequire(path.join(repoRoot, "examples", "gitops", "drift-check.mjs")) as DriftCheck;
const { marked } = nodeRequire("marked") as { marked: { lexer(md: string): MarkedToken[] } };

const SIG = "4dabf18193072939515e22adb298388d";

function urn(type: string, name: string): string {
  return `urn:pulumi:prod::dom0s::${type}::${name}`;
}

type Inputs = Record<string, unknown>;
type Event = Record<string, unknown>;

/** A step's metadata as the engine's events carry it. */
function meta(op: string, type: string, name: string, old?: Inputs, next?: Inputs, extra: object = {}) {
  return {
    op,
    urn: urn(type, name),
    type,
    ...(old ? { old: { type, inputs: old, outputs: old } } : {}),
    ...(next ? { new: { type, inputs: next, outputs: next } } : {}),
    ...extra,
  };
}
let sequence = 0;
const pre = (m: object): Event => ({ sequence: ++sequence, resourcePreEvent: { metadata: m } });
const outputs = (m: object): Event => ({ sequence: ++sequence, resOutputsEvent: { metadata: m } });
const summary = (): Event => ({ sequence: ++sequence, summaryEvent: { resourceChanges: {} } });
const diagnostic = (severity: string, message: string, on?: string): Event => ({
  sequence: ++sequence,
  diagnosticEvent: { severity, message, ...(on ? { urn: on } : {}) },
});

/** A resource's refresh, reading `host` where `recorded` was: its refresh step's two events. */
function refreshed(type: string, name: string, recorded: Inputs, host?: Inputs): Event[] {
  return [
    pre(meta("refresh", type, name, recorded, recorded)),
    outputs(meta("refresh", type, name, recorded, host)),
  ];
}

/** Refresh then the planned update to `declared`, as `pulumi preview --refresh` streams them. */
function drifted(type: string, name: string, host: Inputs, declared: Inputs, extra: object = {}): Event[] {
  return [...refreshed(type, name, declared, host), pre(meta("update", type, name, host, declared, extra))];
}

function clean(type: string, name: string, inputs: Inputs): Event[] {
  return [...refreshed(type, name, inputs, inputs), pre(meta("same", type, name, inputs, inputs))];
}

const stackEvents = (): Event[] => [pre(meta("same", "pulumi:pulumi:Stack", "dom0s-prod", {}, {}))];

const stream = (events: Event[]) => events.map((e) => JSON.stringify(e)).join("\n") + "\n";

function assess(events: Event[], exitCode = 0, stderr = ""): DriftReport {
  return check.assessPreview({ stack: "prod", exitCode, stdout: stream(events), stderr });
}

/** The report's table, as a GFM parser reads it: each cell's tokens. */
function tableOf(markdown: string): { header: MarkedToken[][]; rows: MarkedToken[][][] } {
  const tables = marked.lexer(markdown).filter((t) => t.type === "table");
  expect(tables).toHaveLength(1);
  return {
    header: tables[0].header!.map((c) => c.tokens),
    rows: tables[0].rows!.map((r) => r.map((c) => c.tokens)),
  };
}

/** A cell that is exactly one code span; its text. */
function codeText(cell: MarkedToken[]): string {
  expect(cell.map((t) => t.type)).toEqual(["codespan"]);
  return cell[0].text!;
}

describe("assessPreview", () => {
  const G = "pulumi-nodejs:dynamic/pulumi-tvd:Guest";
  const V = "pulumi-nodejs:dynamic/pulumi-tvd:Vtpm";

  it("makes one row per drifted input: declared from the planned step's new inputs, the host's from its old", () => {
    const report = assess([
      ...stackEvents(),
      ...drifted(
        G,
        "web1",
        { __provider: "code", running: false, memoryMiB: 96, name: "web1", vifs: [{ bridge: "br0" }] },
        { __provider: "code", running: true, memoryMiB: 64, name: "web1", vifs: [{ bridge: "br1" }] },
      ),
      ...clean(G, "db1", { running: true }),
      summary(),
    ]);
    expect([report.outcome, check.exitCodeOf(report), report.resourcesChecked]).toEqual(["drift", 2, 2]);
    expect(report.rows.map((r) => [r.resource, r.property, r.declared, r.host])).toEqual([
      [`${G} web1`, "memoryMiB", "64", "96"],
      [`${G} web1`, "running", "true", "false"],
      [`${G} web1`, "vifs[0].bridge", '"br1"', '"br0"'],
    ]);
  });

  it("takes the engine's detailedDiff when it gives one, nested keys included", () => {
    const old = { extra: { "a.b": [1, 2] }, other: 1 };
    const next = { extra: { "a.b": [1, 3] }, other: 2 };
    const detailedDiff = {
      'extra["a.b"][1]': { kind: "update", inputDiff: true },
      out: { kind: "update", inputDiff: false },
    };
    const report = assess([...drifted(V, "v", old, next, { detailedDiff }), summary()]);
    expect(report.rows.map((r) => [r.property, r.declared, r.host])).toEqual([['extra["a.b"][1]', "3", "2"]]);
  });

  it("names a resource refresh found gone, and one not deployed yet", () => {
    const report = assess([
      ...refreshed(G, "gone", { running: true }),
      pre(meta("create", G, "gone", undefined, { running: true })),
      pre(meta("create", G, "new", undefined, { running: true })),
      summary(),
    ]);
    expect(report.rows.map((r) => [r.name, r.property, r.declared, r.host])).toEqual([
      ["gone", "(resource)", "(declared)", "(missing on the host)"],
      ["new", "(resource)", "(declared)", "(not deployed yet)"],
    ]);
  });

  it("no planned change is no drift: exit 0", () => {
    const report = assess([...stackEvents(), ...clean(G, "a", { running: true }), summary()]);
    expect([report.outcome, check.exitCodeOf(report), report.resourcesChecked]).toEqual(["no-drift", 0, 1]);
    expect(check.renderReport(report)).toContain("**No drift**: 1 resources match the program (exit 0).");
  });

  it("a refresh that could not reach its host is an error, not drift, whatever else drifted: exit 3", () => {
    const message = "error: Preview failed: cannot connect to root@10.0.0.5:22: ECONNREFUSED\n";
    const report = assess(
      [
        ...drifted(G, "a", { running: false }, { running: true }),
        pre(meta("refresh", G, "b", { running: true }, { running: true })),
        diagnostic("error", message, urn(G, "b")),
        diagnostic("error", message, urn(G, "c")),
        diagnostic("info", "noise"),
      ],
      255,
    );
    expect([report.outcome, check.exitCodeOf(report)]).toEqual(["error", 3]);
    expect(report.errors).toEqual([
      "error: Preview failed: cannot connect to root@10.0.0.5:22: ECONNREFUSED",
    ]);
    const md = check.renderReport(report);
    expect(md).toContain("**The check could not be made** (exit 3)");
    expect(md).toContain("- `error: Preview failed: cannot connect to root@10.0.0.5:22: ECONNREFUSED`");
    expect(tableOf(md).rows).toHaveLength(1);
  });

  it("a provider refusing to plan over drift it found is drift: the refresh tells it, the error says why", () => {
    const recorded = { imagePath: "/var/lib/xen/vtpm/v.img", running: true };
    const host = { imagePath: "/var/lib/xen/vtpm/v.img (missing on the host)", running: true };
    const refusal =
      "error: vtpm resource 'v': property imagePath value {<nil>} has a problem: keys would be lost";
    const report = assess(
      [
        ...refreshed(V, "v", recorded, host),
        ...refreshed(G, "g", { running: true }, { running: true }),
        diagnostic("error", refusal, urn(V, "v")),
        diagnostic("error", "error: preview failed"),
      ],
      255,
    );
    expect([report.outcome, check.exitCodeOf(report)]).toEqual(["drift", 2]);
    expect(report.rows.map((r) => [r.name, r.property, r.declared, r.host])).toEqual([
      ["v", "imagePath", '"/var/lib/xen/vtpm/v.img"', '"/var/lib/xen/vtpm/v.img (missing on the host)"'],
    ]);
    const md = check.renderReport(report);
    expect(md).toContain("except where the preview refused to plan it:");
    expect(md).toContain(`- \`${refusal}\``);
  });

  it("a stream cut before its summary, or no stream at all, is an error quoting the CLI's stderr", () => {
    const cut = assess([...clean(G, "a", { running: true })], 0);
    expect([cut.outcome, cut.errors]).toEqual(["error", ["pulumi preview exited 0 before its summary"]]);
    const none = check.assessPreview({
      stack: "prod",
      exitCode: 255,
      stdout: "",
      stderr: "error: no stack named 'prod' found\n",
    });
    expect([none.outcome, none.errors]).toEqual(["error", ["error: no stack named 'prod' found"]]);
  });

  it("never reads debug diagnostics, which may quote secrets", () => {
    const events = [
      diagnostic("debug", "RegisterResource RPC finished: privateKey=S3CR3T"),
      ...clean(G, "a", {}),
      summary(),
    ];
    expect(check.parseEvents(stream(events)).some((e) => JSON.stringify(e).includes("S3CR3T"))).toBe(false);
    expect(check.renderReport(assess(events))).not.toContain("S3CR3T");
  });
});

describe("secrets", () => {
  const secretValue = fc
    .string({ minLength: 6, maxLength: 30 })
    .map((s) => `S3CR3T-${s}`)
    .filter((s) => s.trim() === s);
  /** A secret as the CLI prints it, or as serialized state holds it. */
  const secretForm = (plain: string, form: number) =>
    form === 0 ? "[secret]" : { [SIG]: "1b47061264138c4ac30d75fd1eb44270", plaintext: JSON.stringify(plain) };

  it("never prints a secret's plaintext, whichever side or level holds it", () => {
    fc.assert(
      fc.property(
        secretValue,
        secretValue,
        fc.integer({ min: 0, max: 1 }),
        fc.constantFrom("declared", "host", "both"),
        fc.constantFrom("leaf", "parent"),
        (a, b, form, side, level) => {
          const wrap = (plain: string, secret: boolean) => {
            const v = secret ? secretForm(plain, form) : plain;
            return level === "leaf"
              ? { privateKey: v, port: 22 }
              : secret
                ? v
                : { privateKey: plain, port: 22 };
          };
          const oldIn = { connection: wrap(a, side !== "declared") };
          const newIn = { connection: wrap(b, side !== "host") };
          const md = check.renderReport(
            assess([
              ...drifted("t:m:Guest", "g", oldIn, newIn, { detailedDiff: { "connection.privateKey": {} } }),
              summary(),
            ]),
          );
          expect(md).not.toContain(a);
          expect(md).not.toContain(b);
          const [row] = tableOf(md).rows;
          expect([codeText(row[2]), codeText(row[3])]).toEqual(["[secret]", "[secret]"]);
        },
      ),
    );
  });

  it("redacts private key blocks and the environment's secrets in the CLI's error lines", () => {
    const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----";
    const report = check.assessPreview(
      {
        stack: "prod",
        exitCode: 255,
        stdout: stream([diagnostic("error", `bad key ${key} pass hunter22`)]),
        stderr: "",
      },
      ["hunter22"],
    );
    expect(report.errors).toEqual(["bad key [secret] pass [secret]"]);
    expect(check.redact("-----BEGIN RSA PRIVATE KEY-----\nMIIE (cut")).toBe("[secret]");
  });
});

describe("markdown", () => {
  // Names, property keys and values with what breaks a table: pipes, line breaks, backticks,
  // backslashes, quotes, HTML, leading and trailing spaces, and unicode line separators.
  const hostileChar = fc.constantFrom(
    "|",
    "\n",
    "\r",
    "`",
    "``",
    "\\",
    '"',
    "<b>",
    " ",
    "\u2028",
    "\t",
    "*",
    "[",
  );
  const hostile = fc
    .array(fc.oneof(hostileChar, fc.string({ maxLength: 4 })), { maxLength: 8 })
    .map((parts) => parts.join(""));
  const value = fc.oneof(hostile, fc.integer(), fc.boolean(), fc.array(hostile, { maxLength: 3 }));
  // The engine writes a path's key without escaping a backslash (only `"`), so a key holding one
  // can end up unreadable by its own parser too; keys here have none.
  const key = hostile.filter((k) => !k.includes("\\"));

  it("shows every hostile name and value as exactly one cell holding it", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(
          fc.tuple(
            hostile.filter((n) => n.length > 0 && !n.includes("::")),
            key,
            value,
            value,
          ),
          {
            minLength: 1,
            maxLength: 4,
            selector: ([name]) => name,
          },
        ),
        (resources) => {
          const events = resources.flatMap(([name, key, declared, host]) =>
            drifted(
              "t:m:Guest",
              name,
              { [key]: host },
              { [key]: declared },
              {
                detailedDiff: { [check.formatPropertyPath([key])]: { kind: "update", inputDiff: true } },
              },
            ),
          );
          const md = check.renderReport(assess([...events, summary()]));
          const { header, rows } = tableOf(md);
          expect(header.map((c) => c[0]?.text)).toEqual(["resource", "property", "declared", "on the host"]);
          // One row per resource, in order, each cell one code span: nothing broke out of its cell.
          expect(rows).toHaveLength(resources.length);
          // Rows come in resource order (the type, then the name, as strings compare).
          const ordered = [...resources].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
          rows.forEach((row, i) => {
            const [name, key, declared, host] = ordered[i];
            expect(row).toHaveLength(4);
            const [resource, property, declaredText, hostText] = row.map(codeText);
            expect(resource.startsWith("t:m:Guest ")).toBe(true);
            const shownName = resource.slice("t:m:Guest ".length);
            expect(shownName === name || JSON.parse(shownName) === name).toBe(true);
            const shownKey = property === check.formatPropertyPath([key]) ? property : JSON.parse(property);
            expect(check.parsePropertyPath(shownKey)).toEqual([key]);
            // A value is shown as JSON, and that JSON is the value.
            expect(JSON.parse(declaredText)).toEqual(declared);
            expect(JSON.parse(hostText)).toEqual(host);
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it("keeps an error's hostile line on one list item", () => {
    fc.assert(
      fc.property(hostile, (message) => {
        const md = check.renderReport({
          stack: "p|q",
          outcome: "error",
          rows: [],
          errors: [message],
          resourcesChecked: 0,
        });
        const lines = message.split(/\r?\n/).filter((l) => l.trim()).length || 1;
        const list = marked.lexer(md).filter((t) => t.type === "list") as Array<
          MarkedToken & { items: unknown[] }
        >;
        expect(list[0].items).toHaveLength(lines);
        expect(md.split("\n").length).toBe(5 + lines);
      }),
    );
  });
});

describe("parseArgs", () => {
  it("needs a stack, passes what follows -- to the CLI and refuses --show-secrets", () => {
    expect(check.parseArgs(["--stack", "prod", "--cwd=infra", "--", "--parallel", "4"])).toMatchObject({
      stack: "prod",
      cwd: "infra",
      passthrough: ["--parallel", "4"],
    });
    expect(() => check.parseArgs([])).toThrow(/--stack is required/);
    expect(() => check.parseArgs(["--stack", "p", "--", "--show-secrets"])).toThrow(/would print secrets/);
    expect(() => check.parseArgs(["--stack", "p", "--parallel", "4"])).toThrow(
      /unknown argument "--parallel"/,
    );
    expect(() => check.parseArgs(["--stack"])).toThrow(/--stack needs a value/);
  });
});

describe("the README's example report", () => {
  const FIXTURE = path.join(repoRoot, "test", "fixtures", "gitops", "drift.events.jsonl");
  const START =
    "<!-- gitops-report: what drift-check.mjs wrote in test/e2e/gitops.test.ts, checked by test/unit/gitopsDriftReport.test.ts -->";
  const END = "<!-- /gitops-report -->";

  /** The report as the e2e's drift check made it from these events (its CLI exited 255). */
  const fromFixture = () =>
    check.renderReport(
      check.assessPreview({
        stack: "prod",
        exitCode: 255,
        stdout: readFileSync(FIXTURE, "utf8"),
        stderr: "",
      }),
    );

  it("is exactly what the renderer makes of the events captured in the e2e", () => {
    const readme = readFileSync(path.join(repoRoot, "README.md"), "utf8");
    const block = `${START}\n<!-- prettier-ignore-start -->\n\n${fromFixture()}\n<!-- prettier-ignore-end -->\n${END}`;
    expect(readme).toContain(block);
  });

  it("comes from events holding no secret: each is a signed [secret], no key, no debug diagnostic", () => {
    const text = readFileSync(FIXTURE, "utf8");
    expect(text).not.toMatch(/PRIVATE KEY|"severity":"debug"|"plaintext"/);
    // The event stream writes a secret as Pulumi's signed value with its ciphertext blinded.
    const connections = text.match(/"connection":\{[^}]*\}/g) ?? [];
    expect(connections.length).toBeGreaterThan(0);
    expect(new Set(connections)).toEqual(
      new Set([`"connection":{"${SIG}":"1b47061264138c4ac30d75fd1eb44270","ciphertext":"[secret]"}`]),
    );
    expect(fromFixture()).toMatch(/^\*\*Drift\*\*: /m);
  });
});
