#!/usr/bin/env node
// @ts-check
/**
 * Drift check for a GitOps pipeline: runs `pulumi preview --refresh --json` on one stack and
 * writes a markdown report with one row per drifted property: the resource, the property, the
 * value the program declares and the value read back from the host.
 *
 *   node drift-check.mjs --stack <stack> [--cwd <dir>] [--report <file>] [--events-json <file>]
 *                        [--pulumi <cli>] [-- <pulumi preview args>]
 *
 * --report writes the markdown to a file as well as to stdout (and to $GITHUB_STEP_SUMMARY when
 * set); --events-json keeps the engine's events the report was made from, one JSON object a line
 * (its secrets are `[secret]`; debug diagnostics, which may quote secrets, are left out).
 *
 * Exit codes: 0 no drift, 2 drift, 3 the check could not be made (the CLI failed, a host was
 * unreachable, its output was not a preview). `--expect-no-changes` exits 255 for both drift
 * and failure, which a pipeline cannot tell apart; this script exists for that difference.
 *
 * Plain Node.js (>= 22) with no dependencies, so that it is copied as it is. The parsing and the
 * rendering are pure functions, exported for tests; only main() runs a process and writes files.
 */
import { spawn } from "node:child_process";
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";

export const EXIT_NO_DRIFT = 0;
export const EXIT_DRIFT = 2;
export const EXIT_ERROR = 3;

/** Pulumi's marker of a secret value in serialized state; `[secret]` is how `--json` shows one. */
const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SHOWN = "[secret]";

/**
 * @typedef {{ resource: string, type: string, name: string, property: string,
 *   declared: string, host: string }} DriftRow
 *   One drifted property. `declared` and `host` are display text (JSON, secrets masked).
 * @typedef {{ stack: string, outcome: "no-drift" | "drift" | "error", rows: DriftRow[],
 *   errors: string[], resourcesChecked: number }} DriftReport
 */

// ---------------------------------------------------------------------------------------------
// Pure core: the preview's JSON in, a report out.
// ---------------------------------------------------------------------------------------------

/** @param {unknown} v @returns {boolean} a value Pulumi marks secret, in either of its forms. */
function isSecret(v) {
  return v === SECRET_SHOWN || (typeof v === "object" && v !== null && Object.hasOwn(v, SECRET_SIG_KEY));
}

/** @param {unknown} v @returns {boolean} whether a secret is anywhere inside v. */
function holdsSecret(v) {
  if (isSecret(v)) return true;
  if (Array.isArray(v)) return v.some(holdsSecret);
  if (typeof v === "object" && v !== null) return Object.values(v).some(holdsSecret);
  return false;
}

/**
 * The steps of a property path as the engine writes them in detailedDiff (`a.b[0]["c.d"]`), read
 * as the engine's own parser reads them (sdk/go/common/resource/properties_path.go): a quoted
 * key ends at the first `"` not written `\\"`, and holds every other character as it is.
 * @param {string} p @returns {(string | number)[]}
 */
export function parsePropertyPath(p) {
  if (p === "") return [""]; // the engine writes an empty key bare
  /** @type {(string | number)[]} */
  const steps = [];
  let i = 0;
  while (i < p.length) {
    if (p[i] === ".") {
      i++;
    } else if (p[i] === "[" && p[i + 1] === '"') {
      let key = "";
      let j = i + 2;
      for (; j < p.length && p[j] !== '"'; j++) {
        if (p[j] === "\\" && p[j + 1] === '"') j++;
        key += p[j];
      }
      steps.push(key);
      i = j + 2; // past `"]`
    } else if (p[i] === "[") {
      const close = p.indexOf("]", i);
      const end = close < 0 ? p.length : close;
      const index = p.slice(i + 1, end);
      steps.push(/^\d+$/.test(index) ? Number(index) : index);
      i = end + 1;
    } else {
      let j = i;
      while (j < p.length && p[j] !== "." && p[j] !== "[") j++;
      steps.push(p.slice(i, j));
      i = j;
    }
  }
  return steps;
}

/**
 * The value at a path, and whether the path passes through a secret (a secret object's parts
 * are secret too, and the JSON shows only `[secret]` for the whole).
 * @param {unknown} root @param {(string | number)[]} steps
 * @returns {{ present: boolean, value?: unknown, secret: boolean }}
 */
function valueAt(root, steps) {
  let v = root;
  for (const s of steps) {
    if (isSecret(v)) return { present: true, secret: true };
    if (v === null || typeof v !== "object" || !Object.hasOwn(v, s)) return { present: false, secret: false };
    v = /** @type {Record<string | number, unknown>} */ (v)[s];
  }
  return { present: true, value: v, secret: holdsSecret(v) };
}

/** @param {{ present: boolean, value?: unknown }} at @returns {string} */
function display(at) {
  return at.present ? valueText(at.value) : "(none)";
}

/** @param {string} urn @returns {{ type: string, name: string }} */
function splitUrn(urn) {
  // urn:pulumi:<stack>::<project>::<qualified type>::<name>; a name may itself hold "::".
  const parts = urn.split("::");
  const qualifiedType = parts[2] ?? "";
  return { type: qualifiedType.split("$").pop() ?? qualifiedType, name: parts.slice(3).join("::") || urn };
}

/** Steps that plan no change. */
const NO_CHANGE = new Set(["same", "read", "refresh", "discard", "remove-pending-replace"]);

/**
 * The engine's events, from what `pulumi preview --json` prints with
 * PULUMI_ENABLE_STREAMING_JSON_PREVIEW set: one JSON object per line. Debug diagnostics are left
 * out here, before anything reads them: the Node SDK logs resource RPCs at debug severity with
 * secret outputs in plaintext.
 * @param {string} stdout @returns {Record<string, any>[]}
 */
export function parseEvents(stdout) {
  /** @type {Record<string, any>[]} */
  const events = [];
  for (const line of stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    let event;
    try {
      event = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof event !== "object" || event === null || Array.isArray(event)) continue;
    if (event.diagnosticEvent && event.diagnosticEvent.severity === "debug") continue;
    events.push(event);
  }
  return events;
}

/**
 * Property paths (as the engine writes them) where two inputs differ, down to the leaves of
 * objects and of arrays of one length; a secret is a leaf.
 * @param {unknown} a @param {unknown} b @param {(string | number)[]} at @returns {(string | number)[][]}
 */
function differingPaths(a, b, at = []) {
  const plainObject = (/** @type {unknown} */ v) =>
    typeof v === "object" && v !== null && !Array.isArray(v) && !isSecret(v);
  if (plainObject(a) && plainObject(b)) {
    const ao = /** @type {Record<string, unknown>} */ (a);
    const bo = /** @type {Record<string, unknown>} */ (b);
    return [...new Set([...Object.keys(ao), ...Object.keys(bo)])]
      .filter((k) => !(at.length === 0 && k.startsWith("__")))
      .sort()
      .flatMap((k) => differingPaths(ao[k], bo[k], [...at, k]));
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    return a.flatMap((v, i) => differingPaths(v, b[i], [...at, i]));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [at];
}

/** The engine's PropertyPath.String(): `a.b[0]["c.d"]`. @param {(string | number)[]} steps */
export function formatPropertyPath(steps) {
  return steps
    .map((k, i) => {
      if (typeof k === "number") return `[${k}]`;
      if (/[^A-Za-z0-9_]/.test(k)) return `["${k.replace(/"/g, '\\"')}"]`;
      return i === 0 ? k : `.${k}`;
    })
    .join("");
}

/**
 * One row per property where `declared` and `host` differ.
 * @param {{ resource: string, type: string, name: string }} base
 * @param {Record<string, unknown>} declaredInputs @param {Record<string, unknown>} hostInputs
 * @param {string[] | null} paths the engine's own list, when it gave one
 * @returns {DriftRow[]}
 */
function propertyRows(base, declaredInputs, hostInputs, paths) {
  const list = paths ?? differingPaths(hostInputs, declaredInputs).map(formatPropertyPath);
  return [...new Set(list)].sort().map((property) => {
    const steps = parsePropertyPath(property);
    const declared = valueAt(declaredInputs, steps);
    const host = valueAt(hostInputs, steps);
    const secret = declared.secret || host.secret;
    return {
      ...base,
      property,
      declared: secret ? SECRET_SHOWN : display(declared),
      host: secret ? SECRET_SHOWN : display(host),
    };
  });
}

/**
 * The drift one `pulumi preview --refresh` found, one row per property, from its events.
 *
 * pulumi-tvd reports what it reads on a host on the resource's inputs, so the step planned after
 * a resource's refresh has the host's values as its old inputs and the program's declaration as
 * its new ones. A resource refresh found gone is planned as a create: one row, `(resource)`.
 * When the preview stopped before it planned a resource (a provider refusing to plan over drift,
 * such as a vTPM image that is gone: its keys are lost), that resource's refresh still tells
 * its drift: the inputs it last deployed against what the refresh read.
 *
 * @param {Record<string, any>[]} events
 * @returns {{ rows: DriftRow[], errors: { urn?: string, message: string }[], resourcesChecked: number,
 *   finished: boolean }}
 */
export function driftFromEvents(events) {
  /** @type {Map<string, { refresh?: any, refreshed?: any, plan: any[] }>} */
  const resources = new Map();
  /** @type {{ urn?: string, message: string }[]} */
  const errors = [];
  let finished = false;
  const entry = (/** @type {string} */ urn) => {
    let e = resources.get(urn);
    if (!e) resources.set(urn, (e = { plan: [] }));
    return e;
  };
  for (const event of events) {
    const d = event.diagnosticEvent;
    if (d && d.severity === "error") {
      const message = String(d.prefix ?? "") + String(d.message ?? "");
      if (message.trim())
        errors.push({ urn: typeof d.urn === "string" && d.urn ? d.urn : undefined, message: message.trim() });
    }
    if (event.summaryEvent) finished = true;
    const pre = event.resourcePreEvent?.metadata;
    const out = event.resOutputsEvent?.metadata;
    for (const [m, isOutputs] of /** @type {const} */ ([
      [pre, false],
      [out, true],
    ])) {
      if (!m || typeof m.urn !== "string") continue;
      const { type } = splitUrn(m.urn);
      if (type === "pulumi:pulumi:Stack" || type.startsWith("pulumi:providers:")) continue;
      const e = entry(m.urn);
      if (m.op === "refresh") {
        if (isOutputs) e.refreshed = m;
        else e.refresh = m;
      } else if (!isOutputs) {
        e.plan.push(m);
      }
    }
  }

  /** @type {DriftRow[]} */
  const rows = [];
  for (const [urn, e] of resources) {
    const { type, name } = splitUrn(urn);
    const base = { resource: `${type} ${name}`, type, name };
    const gone = e.refreshed !== undefined && !e.refreshed.new;
    // A replacement shows as replace, create-replacement and delete-replaced: one is enough.
    const planned = e.plan.filter((m) => !NO_CHANGE.has(m.op) && !/^(create|delete)-replace/.test(m.op));
    if (e.plan.length === 0 && e.refreshed?.old && e.refreshed?.new) {
      rows.push(...propertyRows(base, e.refreshed.old.inputs ?? {}, e.refreshed.new.inputs ?? {}, null));
      continue;
    }
    for (const m of planned.slice(0, 1)) {
      if (m.op === "create" || m.op === "delete") {
        const created = m.op === "create";
        rows.push({
          ...base,
          property: "(resource)",
          declared: created ? "(declared)" : "(not declared)",
          host: created ? (gone ? "(missing on the host)" : "(not deployed yet)") : "(exists)",
        });
        continue;
      }
      const detailed = m.detailedDiff && typeof m.detailedDiff === "object" ? m.detailedDiff : null;
      const paths = detailed
        ? Object.entries(detailed)
            .filter(([, diff]) => diff?.inputDiff !== false)
            .map(([p]) => p)
        : null;
      rows.push(
        ...propertyRows(base, m.new?.inputs ?? {}, m.old?.inputs ?? {}, paths?.length ? paths : null),
      );
    }
    if (gone && planned.length === 0) {
      rows.push({ ...base, property: "(resource)", declared: "(recorded)", host: "(missing on the host)" });
    }
  }
  // In resource order, not the engine's (which varies with its parallelism): reports compare.
  const byResource = (/** @type {DriftRow} */ a, /** @type {DriftRow} */ b) =>
    a.resource < b.resource ? -1 : a.resource > b.resource ? 1 : 0;
  return { rows: rows.sort(byResource), errors, resourcesChecked: resources.size, finished };
}

/**
 * The outcome of one check, from the CLI's exit code and output.
 *
 * An error on a resource whose drift was found is the provider refusing to plan over that drift
 * (a vTPM image gone: the report shows it, and the error says why `pulumi up` will not repair
 * it): drift, 2. Any other error (a refresh that could not reach its host, the program, the
 * backend, a preview that stopped with nothing found) means the check was not made: 3.
 * @param {{ stack: string, exitCode: number | null, stdout: string, stderr: string }} run
 * @param {string[]} [hide] strings never to print (secret values the environment holds)
 * @returns {DriftReport}
 */
export function assessPreview(run, hide = []) {
  const found = driftFromEvents(parseEvents(run.stdout));
  const stderrLines = redact(run.stderr, hide)
    .split("\n")
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() && !/^\s*(warning: )?A new version of Pulumi/.test(l));
  const errors = [...new Set(found.errors.map((e) => redact(e.message, hide)))];
  const drifted = new Set(found.rows.map((r) => r.resource));
  const onDrift = (/** @type {{ urn?: string }} */ e) => {
    if (!e.urn) return false;
    const { type, name } = splitUrn(e.urn);
    return drifted.has(`${type} ${name}`);
  };
  const explained =
    found.errors.length > 0 &&
    found.errors.some((e) => e.urn) &&
    found.errors.filter((e) => e.urn).every(onDrift);
  const failed = run.exitCode !== 0 || found.errors.length > 0 || !found.finished;
  if (failed && !errors.length) errors.push(...stderrLines);
  if (failed && !errors.length) {
    errors.push(`pulumi preview exited ${run.exitCode}${found.finished ? "" : " before its summary"}`);
  }
  const outcome = failed && !explained ? "error" : found.rows.length ? "drift" : "no-drift";
  return {
    stack: run.stack,
    outcome,
    rows: found.rows,
    errors: outcome === "no-drift" ? [] : errors,
    resourcesChecked: found.resourcesChecked,
  };
}

/** @param {DriftReport} report @returns {number} */
export function exitCodeOf(report) {
  return report.outcome === "error" ? EXIT_ERROR : report.outcome === "drift" ? EXIT_DRIFT : EXIT_NO_DRIFT;
}

const PRIVATE_KEY_BLOCK =
  /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g;

/**
 * Text with every known secret value, every private key block and every serialized secret
 * replaced by `[secret]`: a diagnostic may quote what it was given.
 * @param {string} text @param {string[]} hide
 */
export function redact(text, hide = []) {
  let out = text.replace(PRIVATE_KEY_BLOCK, SECRET_SHOWN);
  for (const h of [...hide].filter((s) => s.length >= 4).sort((a, b) => b.length - a.length)) {
    out = out.split(h).join(SECRET_SHOWN);
  }
  return out;
}

/**
 * Characters a table cell never shows as they are: `|` (GFM splits cells on it before it parses
 * code spans, and parsers disagree on `\\|`), line breaks (a row is one line) and other controls.
 */
const UNSAFE_IN_CELL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029|]/g;
const UNSAFE_CHAR = new RegExp(UNSAFE_IN_CELL.source);

/** @param {string} c */
const jsonEscape = (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/**
 * A value as JSON, as it is written in the program and in the README's drift table; `|` and
 * control characters written as JSON's `\\u` escapes, so the text is still JSON and still the value.
 * @param {unknown} value
 */
export function valueText(value) {
  return (JSON.stringify(value) ?? String(value)).replace(UNSAFE_IN_CELL, jsonEscape);
}

/**
 * A name or a property path as it is, or as a JSON string when it holds a character a cell
 * cannot show (or starts with a quote, which would read as JSON).
 * @param {string} name
 */
export function nameText(name) {
  return UNSAFE_CHAR.test(name) || name.startsWith('"') || name.trim() !== name || name === ""
    ? valueText(name)
    : name;
}

/**
 * Text (no `|`, no line break) as one inline code span: a backtick fence longer than any run of
 * backticks inside, padded with a space when the text begins or ends with a backtick.
 * @param {string} text
 */
export function codeSpan(text) {
  const longestRun = Math.max(0, ...(text.match(/`+/g) ?? []).map((r) => r.length));
  const fence = "`".repeat(longestRun + 1);
  const pad = /^`|`$/.test(text) ? " " : "";
  return `${fence}${pad}${text}${pad}${fence}`;
}

/** Text a cell can show; a no-op on what valueText and nameText made. @param {string} text */
const cellSafe = (text) => text.replace(UNSAFE_IN_CELL, jsonEscape);

/** A line of the CLI's output (an error) as a code span, whatever it holds. @param {string} line */
function codeLine(line) {
  return codeSpan(line.trim().replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, jsonEscape));
}

/** The errors' lines that say something. @param {string[]} errors */
function errorLines(errors) {
  const lines = errors.flatMap((e) => e.split(/\r?\n/)).filter((l) => l.trim());
  return lines.length ? lines : ["(the CLI said nothing)"];
}

/**
 * The markdown report of a check.
 * @param {DriftReport} report
 */
export function renderReport(report) {
  const lines = [`### Drift check: stack ${codeLine(report.stack)}`, ""];
  if (report.outcome === "error") {
    lines.push(
      `**The check could not be made** (exit ${EXIT_ERROR}). The CLI said:`,
      "",
      ...errorLines(report.errors).map((l) => `- ${codeLine(l)}`),
    );
    if (report.rows.length) lines.push("", "Drift found before the error:");
  } else if (report.outcome === "no-drift") {
    lines.push(
      `**No drift**: ${report.resourcesChecked} resources match the program (exit ${EXIT_NO_DRIFT}).`,
    );
  } else {
    const resources = new Set(report.rows.map((r) => r.resource)).size;
    lines.push(
      `**Drift**: ${report.rows.length} ${report.rows.length === 1 ? "property" : "properties"} on ` +
        `${resources} of ${report.resourcesChecked} resources (exit ${EXIT_DRIFT}). ` +
        "`pulumi up` puts back what the program declares" +
        (report.errors.length ? ", except where the preview refused to plan it:" : "."),
    );
    if (report.errors.length) lines.push("", ...errorLines(report.errors).map((l) => `- ${codeLine(l)}`));
  }
  if (report.rows.length) {
    lines.push(
      "",
      "| resource | property | declared | on the host |",
      "| -------- | -------- | -------- | ----------- |",
      ...report.rows.map(
        (r) =>
          `| ${codeSpan(`${r.type} ${nameText(r.name)}`)} | ${codeSpan(nameText(r.property))} | ` +
          `${codeSpan(cellSafe(r.declared))} | ${codeSpan(cellSafe(r.host))} |`,
      ),
    );
  }
  return `${lines.join("\n")}\n`;
}

// ---------------------------------------------------------------------------------------------
// Shell: arguments, the CLI, files.
// ---------------------------------------------------------------------------------------------

const USAGE = `usage: node drift-check.mjs --stack <stack> [--cwd <dir>] [--report <file>] [--events-json <file>]
                          [--pulumi <cli>] [-- <pulumi preview args>]
exit codes: ${EXIT_NO_DRIFT} no drift, ${EXIT_DRIFT} drift, ${EXIT_ERROR} the check could not be made`;

/**
 * @param {string[]} argv
 * @returns {{ stack: string, cwd: string, report?: string, eventsJson?: string, pulumi: string,
 *   passthrough: string[] }}
 */
export function parseArgs(argv) {
  /** @type {Record<string, string>} */
  const opts = {};
  const passthrough = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      passthrough.push(...argv.slice(i + 1));
      break;
    }
    const m = /^--(stack|cwd|report|events-json|pulumi)(?:=(.*))?$/.exec(a);
    if (!m)
      throw new Error(`unknown argument ${JSON.stringify(a)}; arguments for pulumi preview go after --`);
    const value = m[2] ?? argv[++i];
    if (value === undefined || value === "") throw new Error(`--${m[1]} needs a value`);
    opts[m[1]] = value;
  }
  if (!opts.stack) throw new Error("--stack is required: name the stack to check, e.g. --stack prod");
  const leaking = passthrough.find((a) => /^--show-secrets(=|$)/.test(a));
  if (leaking) throw new Error(`${leaking} would print secrets in the report; remove it`);
  return {
    stack: opts.stack,
    cwd: opts.cwd ?? ".",
    report: opts.report,
    eventsJson: opts["events-json"],
    pulumi: opts.pulumi ?? "pulumi",
    passthrough,
  };
}

/**
 * Values of the environment that look secret (the backend's passphrase, tokens, keys): never
 * printed, whatever a diagnostic quotes.
 * @param {NodeJS.ProcessEnv} env
 */
function secretsOfEnv(env) {
  return Object.entries(env)
    .filter(([k, v]) => v && v.length >= 8 && /PASSPHRASE|PASSWORD|TOKEN|SECRET|PRIVATE|_KEY$/i.test(k))
    .map(([, v]) => /** @type {string} */ (v));
}

/**
 * @param {string} cli @param {string[]} args @param {NodeJS.ProcessEnv} env
 * @returns {Promise<{ exitCode: number | null, stdout: string, stderr: string }>}
 */
function runCli(cli, args, env) {
  return new Promise((resolve) => {
    const child = spawn(cli, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    /** @type {Buffer[]} */ const out = [];
    /** @type {Buffer[]} */ const err = [];
    child.stdout.on("data", (d) => out.push(d));
    child.stderr.on("data", (d) => err.push(d));
    child.on("error", (e) =>
      resolve({ exitCode: null, stdout: "", stderr: `cannot run ${cli}: ${e.message}` }),
    );
    child.on("close", (code) =>
      resolve({
        exitCode: code,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      }),
    );
  });
}

/** @param {string} file @param {string} text */
function writeFileMaking(file, text) {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileSync(file, text);
}

/** @param {string[]} argv @param {NodeJS.ProcessEnv} env @returns {Promise<number>} */
export async function main(argv, env) {
  if (argv.includes("--help") && !argv.slice(0, argv.indexOf("--help")).includes("--")) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_NO_DRIFT;
  }
  let opts;
  try {
    opts = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`drift-check: ${/** @type {Error} */ (e).message}\n${USAGE}\n`);
    return EXIT_ERROR;
  }
  // The engine's events, one per line, rather than the one document `preview --json` prints by
  // default: that document keeps no refresh's result, and none of a preview that failed.
  const childEnv = { ...env, PULUMI_ENABLE_STREAMING_JSON_PREVIEW: "true" };
  const args = [
    "preview",
    "--refresh",
    "--json",
    "--non-interactive",
    "--stack",
    opts.stack,
    "--cwd",
    opts.cwd,
    ...opts.passthrough,
  ];
  const run = await runCli(opts.pulumi, args, childEnv);
  const report = assessPreview({ stack: opts.stack, ...run }, secretsOfEnv(env));
  const markdown = renderReport(report);
  process.stdout.write(markdown);
  if (opts.report) writeFileMaking(opts.report, markdown);
  if (opts.eventsJson) {
    writeFileMaking(
      opts.eventsJson,
      parseEvents(run.stdout)
        .map((e) => `${JSON.stringify(e)}\n`)
        .join(""),
    );
  }
  if (env.GITHUB_STEP_SUMMARY) appendFileSync(env.GITHUB_STEP_SUMMARY, markdown);
  const code = exitCodeOf(report);
  process.stderr.write(
    code === EXIT_DRIFT
      ? `drift-check: drift on stack ${opts.stack} (exit ${code})\n`
      : code === EXIT_ERROR
        ? `drift-check: the check of stack ${opts.stack} could not be made (exit ${code})\n`
        : `drift-check: no drift on stack ${opts.stack}\n`,
  );
  return code;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2), process.env).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`drift-check: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(EXIT_ERROR);
    },
  );
}
