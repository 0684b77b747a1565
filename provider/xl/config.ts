/**
 * xl.cfg text, rendered and parsed in pure TypeScript. The grammar is libxlutil's (Xen 4.17):
 * `key = value` settings separated by newlines or `;`, `#` comments, values that are numbers,
 * "double-quoted strings" with C escapes, 'single-quoted strings' without, or [lists] of them.
 * The lab checks every rendered config against Xen's own parser (test/lab/xlConfig.test.ts).
 */

export type XlValue = string | number | readonly string[];

/** An ordered config: the order keys are written in, for stable, reviewable files. */
export type XlConfig = ReadonlyArray<readonly [string, XlValue]>;

/** Thrown on text libxlutil would reject; names the line. */
export class XlConfigSyntaxError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`xl config line ${line}: ${message}`);
    this.name = "XlConfigSyntaxError";
  }
}

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

function quote(s: string): string {
  // Control characters never reach here from validated inputs; refuse rather than guess.
  if ([...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f))
    throw new Error(`cannot write a control character into an xl config: ${JSON.stringify(s)}`);
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

function renderValue(v: XlValue): string {
  if (typeof v === "number") {
    if (!Number.isInteger(v)) throw new Error(`xl config numbers are integers, got ${v}`);
    return String(v);
  }
  if (typeof v === "string") return quote(v);
  if (v.length === 0) return "[]";
  return `[\n${v.map((item) => `    ${quote(item)},`).join("\n")}\n]`;
}

/** Renders settings in the given order, one per line, lists one item per line. */
export function renderXlConfig(config: XlConfig, header?: string): string {
  const lines = header ? header.split("\n").map((l) => `# ${l}`.trimEnd()) : [];
  for (const [key, value] of config) {
    if (!KEY.test(key)) throw new Error(`invalid xl config key ${JSON.stringify(key)}`);
    lines.push(`${key} = ${renderValue(value)}`);
  }
  return lines.join("\n") + "\n";
}

/** Parses xl.cfg text into its settings (later settings of a key win, as in libxlutil). */
export function parseXlConfig(text: string): Map<string, XlValue> {
  let i = 0;
  let line = 1;
  const out = new Map<string, XlValue>();
  const peek = () => text[i];
  const skipBlanks = (newlines: boolean) => {
    for (;;) {
      const c = peek();
      if (c === "#") {
        while (i < text.length && text[i] !== "\n") i++;
      } else if (c === " " || c === "\t" || c === "\r" || (newlines && c === "\n")) {
        if (c === "\n") line++;
        i++;
      } else return;
    }
  };
  const fail = (message: string): never => {
    throw new XlConfigSyntaxError(line, message);
  };
  const readString = (): string => {
    const q = text[i++];
    let s = "";
    for (;;) {
      const c = text[i++];
      if (c === undefined || c === "\n") fail("unterminated string");
      if (c === q) return s;
      if (c === "\\" && q === '"') {
        const e = text[i++];
        const escapes: Record<string, string> = { n: "\n", t: "\t", r: "\r", "\\": "\\", '"': '"', "'": "'" };
        if (e === undefined || !(e in escapes)) fail(`unsupported escape \\${e ?? ""}`);
        s += escapes[e];
      } else s += c;
    }
  };
  const readAtom = (): string | number => {
    const c = peek();
    if (c === '"' || c === "'") return readString();
    const m = /^(0x[0-9a-fA-F]+|[0-9]+)/.exec(text.slice(i));
    if (!m) return fail(`unexpected ${JSON.stringify(c ?? "end of file")}`);
    i += m[0].length;
    return m[0].startsWith("0x") ? parseInt(m[0], 16) : Number(m[0]);
  };
  const readValue = (): XlValue => {
    if (peek() !== "[") return readAtom();
    i++;
    const items: string[] = [];
    for (;;) {
      skipBlanks(true);
      if (peek() === "]") {
        i++;
        return items;
      }
      const atom = readAtom();
      items.push(String(atom));
      skipBlanks(true);
      if (peek() === ",") i++;
      else if (peek() !== "]") fail("expected ',' or ']' in a list");
    }
  };
  for (;;) {
    skipBlanks(true);
    if (i >= text.length) return out;
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i));
    if (!m) fail(`expected a setting name, found ${JSON.stringify(peek())}`);
    i += m![0].length;
    skipBlanks(false);
    if (peek() !== "=") fail(`expected '=' after ${m![0]}`);
    i++;
    skipBlanks(false);
    out.set(m![0], readValue());
    skipBlanks(false);
    const end = peek();
    if (end === "\n") line++;
    if (end === ";" || end === "\n") i++;
    else if (end !== undefined) fail(`unexpected ${JSON.stringify(end)} after the value of ${m![0]}`);
  }
}

/** Values as libxlutil hands them to xl: numbers are strings too. */
function normal(v: XlValue | undefined): string | string[] | undefined {
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.map(String) : String(v);
}

/**
 * The keys whose values differ between two configs, compared as xl would read them: order,
 * spacing, comments and quoting style do not matter.
 */
export function diffXlConfigs(a: ReadonlyMap<string, XlValue>, b: ReadonlyMap<string, XlValue>): string[] {
  const keys = new Set([...a.keys(), ...b.keys()]);
  return [...keys]
    .filter((k) => JSON.stringify(normal(a.get(k))) !== JSON.stringify(normal(b.get(k))))
    .sort();
}
