/**
 * The pure part of examples/gitops/drift-check.mjs: the preview's JSON in, the markdown report
 * and the exit code out. Hostile names and values (pipes, line breaks, backticks) are rendered
 * through a real GFM parser (marked) and must come back as exactly the cells meant; secrets
 * never appear. The report the README shows is what the renderer makes of the captured preview.
 */
import { readFileSync } from "node:fs"; // README check below
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
  driftFromPreview(doc: unknown): { rows: DriftRow[]; errors: string[]; resourcesChecked: number };
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

/** The engine's PropertyPath.String() (sdk/go/common/resource/properties_path.go). */
function formatPath(steps: (string | number)[]): string {
  return steps
    .map((k, i) => {
      if (typeof k === "number") return `[${k}]`;
      const quoted = [...k].some((c) => !/[A-Za-z0-9_]/.test(c));
      if (quoted) return `["${k.replace(/"/g, '\\"')}"]`;
      return i === 0 ? k : `.${k}`;
    })
    .join("");
}

function urn(type: string, name: string): string {
  return `urn:pulumi:prod::dom0s::${type}::${name}`;
}

/** One planned update on a resource, as `pulumi preview --refresh --json` writes it. */
function updateStep(type: string, name: string, oldInputs: object, newInputs: object, paths: string[]) {
  return {
    op: "update",
    urn: urn(type, name),
    oldState: { urn: urn(type, name), type, inputs: oldInputs, outputs: oldInputs },
    newState: { urn: urn(type, name), type, inputs: newInputs, outputs: newInputs },
    diffReasons: paths.map((p) => p.split(/[.[]/)[0]),
    detailedDiff: Object.fromEntries(paths.map((p) => [p, { kind: "update", inputDiff: true }])),
  };
}

function stackStep() {
  return { op: "same", urn: urn("pulumi:pulumi:Stack", "dom0s-prod") };
}

function assess(doc: unknown, exitCode = 0, stderr = ""): DriftReport {
  return check.assessPreview({ stack: "prod", exitCode, stdout: JSON.stringify(doc), stderr });
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

describe("driftFromPreview", () => {
  it("makes one row per drifted property: declared from the new inputs, the host's from the old", () => {
    const doc = {
      steps: [
        stackStep(),
        { op: "refresh", urn: urn("pulumi-nodejs:dynamic:Resource", "web1") },
        updateStep(
          "pulumi-nodejs:dynamic:Resource",
          "web1",
          { running: false, memoryMiB: 96, name: "web1" },
          { running: true, memoryMiB: 64, name: "web1" },
          ["memoryMiB", "running"],
        ),
        { op: "same", urn: urn("pulumi-nodejs:dynamic:Resource", "db1") },
      ],
    };
    const report = assess(doc);
    expect(report.outcome).toBe("drift");
    expect(check.exitCodeOf(report)).toBe(check.EXIT_DRIFT);
    expect(report.resourcesChecked).toBe(2);
    expect(report.rows).toEqual([
      expect.objectContaining({ name: "web1", property: "memoryMiB", declared: "64", host: "96" }),
      expect.objectContaining({ name: "web1", property: "running", declared: "true", host: "false" }),
    ]);
  });

  it("reads nested paths, and names a resource refresh found gone and one not deployed yet", () => {
    const doc = {
      steps: [
        updateStep("t:m:Vtpm", "v", { extra: { "a.b": [1, 2] } }, { extra: { "a.b": [1, 3] } }, [
          'extra["a.b"][1]',
        ]),
        { op: "refresh", urn: urn("t:m:Guest", "gone") },
        { op: "create", urn: urn("t:m:Guest", "gone"), newState: { inputs: {} } },
        { op: "create", urn: urn("t:m:Guest", "new"), newState: { inputs: {} } },
      ],
    };
    expect(check.driftFromPreview(doc).rows.map((r) => [r.name, r.property, r.declared, r.host])).toEqual([
      ["v", 'extra["a.b"][1]', "3", "2"],
      ["gone", "(resource)", "(declared)", "(missing on the host)"],
      ["new", "(resource)", "(declared)", "(not deployed yet)"],
    ]);
  });

  it("no planned step is no drift: exit 0", () => {
    const doc = {
      steps: [
        stackStep(),
        { op: "same", urn: urn("t:m:Guest", "a") },
        { op: "refresh", urn: urn("t:m:Guest", "a") },
      ],
    };
    const report = assess(doc);
    expect([report.outcome, check.exitCodeOf(report), report.resourcesChecked]).toEqual(["no-drift", 0, 1]);
    expect(check.renderReport(report)).toContain("**No drift**: 1 resources match the program (exit 0).");
  });

  it("an error diagnostic is an error, not drift, even with drift found before it: exit 3", () => {
    const doc = {
      steps: [updateStep("t:m:Guest", "a", { running: false }, { running: true }, ["running"])],
      diagnostics: [
        {
          urn: urn("t:m:Guest", "b"),
          severity: "error",
          message: "cannot connect to root@10.0.0.5:22: ECONNREFUSED\n",
        },
        { severity: "info", message: "noise" },
      ],
    };
    const report = assess(doc, 255);
    expect(report.outcome).toBe("error");
    expect(check.exitCodeOf(report)).toBe(check.EXIT_ERROR);
    expect(report.errors).toEqual(["cannot connect to root@10.0.0.5:22: ECONNREFUSED"]);
    const md = check.renderReport(report);
    expect(md).toContain("**The check could not be made** (exit 3)");
    expect(md).toContain("- `cannot connect to root@10.0.0.5:22: ECONNREFUSED`");
    expect(tableOf(md).rows).toHaveLength(1);
  });

  it("output that is no preview document is an error quoting the CLI's stderr", () => {
    const report = check.assessPreview({
      stack: "prod",
      exitCode: 255,
      stdout: "",
      stderr: "error: no stack named 'prod' found\n",
    });
    expect([report.outcome, report.errors]).toEqual(["error", ["error: no stack named 'prod' found"]]);
    expect(check.assessPreview({ stack: "p", exitCode: 0, stdout: "[1]", stderr: "" }).outcome).toBe("error");
    expect(check.assessPreview({ stack: "p", exitCode: 1, stdout: "{}", stderr: "" }).errors).toEqual([
      "pulumi preview exited 1",
    ]);
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
          const doc = { steps: [updateStep("t:m:Guest", "g", oldIn, newIn, ["connection.privateKey"])] };
          const md = check.renderReport(assess(doc));
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
        stdout: JSON.stringify({
          diagnostics: [{ severity: "error", message: `bad key ${key} pass hunter22` }],
        }),
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
          const doc = {
            steps: resources.map(([name, key, declared, host]) =>
              updateStep("t:m:Guest", name, { [key]: host }, { [key]: declared }, [formatPath([key])]),
            ),
          };
          const md = check.renderReport(assess(doc));
          const { header, rows } = tableOf(md);
          expect(header.map((c) => c[0]?.text)).toEqual(["resource", "property", "declared", "on the host"]);
          // One row per resource, in order, each cell one code span: nothing broke out of its cell.
          expect(rows).toHaveLength(resources.length);
          rows.forEach((row, i) => {
            const [name, key, declared, host] = resources[i];
            expect(row).toHaveLength(4);
            const [resource, property, declaredText, hostText] = row.map(codeText);
            expect(resource.startsWith("t:m:Guest ")).toBe(true);
            const shownName = resource.slice("t:m:Guest ".length);
            expect(shownName === name || JSON.parse(shownName) === name).toBe(true);
            const shownKey = property === formatPath([key]) ? property : JSON.parse(property);
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
void readFileSync;
