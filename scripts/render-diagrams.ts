/// <reference lib="dom" />
// The functions passed to page.evaluate run in the browser page: they see its DOM.
/**
 * Renders TrustedVirtualDomain diagrams (Mermaid text, `tvd.diagram`) to SVG with Mermaid's own
 * renderer (the npm `mermaid` package's browser bundle) inside Debian's chromium, driven by
 * puppeteer-core, and takes a PNG screenshot of each SVG as that browser shows it.
 *
 * Why not @mermaid-js/mermaid-cli: it does exactly this (loads mermaid in a puppeteer page and
 * calls `mermaid.render`), but it needs the full `puppeteer` package, whose install step
 * downloads a Chrome build of its own unless every `npm ci` on every machine is told not to;
 * here such a download fails. puppeteer-core never downloads anything and drives the chromium
 * Debian ships.
 *
 *   node scripts/render-diagrams.ts --out docs/diagrams [--png] < diagrams.json
 *
 * diagrams.json maps a TVD's name to its diagram text, or is a `pulumi stack export`: then every
 * TrustedVirtualDomain's registered `diagram` output is taken. Writes <tvd>.mmd and <tvd>.svg
 * (and <tvd>.png with --png) into the --out directory.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import puppeteer, { type Browser } from "puppeteer-core";

// Node runs this file as an ES module (type stripping) and Jest as CommonJS: neither `require`
// nor `import.meta` exists in both, so packages are resolved from the checkout's root.
const root = process.env.TVD_ROOT ?? process.cwd();
const mermaidBundle = () =>
  createRequire(path.join(root, "package.json")).resolve("mermaid/dist/mermaid.min.js");

/** Debian's chromium; CHROMIUM names another binary. */
export const chromiumPath = () => process.env.CHROMIUM ?? "/usr/bin/chromium";

export async function launchChromium(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    // Root (the lab's machines and CI run as root) cannot use chromium's sandbox.
    args: ["--no-sandbox", "--disable-gpu", "--font-render-hinting=none"],
  });
}

/**
 * Each diagram's SVG. Labels are HTML in foreignObject (Mermaid's default): with plain SVG text
 * labels Mermaid 12 leaves the entities of one-line labels undecoded (`#quot;` shows as
 * "&quot;"), which test/browser/diagram.test.ts caught on hostile names.
 */
export async function renderSvgs(
  browser: Browser,
  diagrams: Record<string, string>,
): Promise<Record<string, string>> {
  const page = await browser.newPage();
  try {
    await page.setContent("<!doctype html><html><body></body></html>");
    await page.addScriptTag({ path: mermaidBundle() });
    const out: Record<string, string> = {};
    for (const [name, text] of Object.entries(diagrams)) {
      out[name] = await page.evaluate(
        async (id, source) => {
          const mermaid = (globalThis as unknown as { mermaid: MermaidApi }).mermaid;
          mermaid.initialize({
            startOnLoad: false,
            securityLevel: "strict",
            theme: "default",
            htmlLabels: true,
            flowchart: { htmlLabels: true, curve: "basis", wrappingWidth: 400 },
          });
          const { svg } = await mermaid.render(id, source);
          // mermaid.render gives HTML (a <br> in a label is not closed): re-serialized as XML,
          // the file is an SVG image that opens on its own.
          const holder = document.createElement("div");
          holder.innerHTML = svg;
          return new XMLSerializer().serializeToString(holder.firstElementChild!);
        },
        `tvd-${name.replace(/[^A-Za-z0-9_-]/g, "_")}`,
        text,
      );
    }
    return out;
  } finally {
    await page.close();
  }
}

interface MermaidApi {
  initialize(config: Record<string, unknown>): void;
  render(id: string, text: string): Promise<{ svg: string }>;
}

/** A PNG of the SVG file as chromium shows it when opened on its own. */
export async function screenshotSvg(browser: Browser, svgFile: string): Promise<Uint8Array> {
  const page = await browser.newPage();
  try {
    await page.setViewport({ width: 1600, height: 1000, deviceScaleFactor: 1 });
    await page.goto(pathToFileURL(path.resolve(svgFile)).href, { waitUntil: "load" });
    // Mermaid's SVG is as wide as its page and centres the drawing: clip to what it drew.
    const clip = await page.evaluate(() => {
      const svg = document.documentElement as unknown as SVGSVGElement;
      const [, , w, h] = (svg.getAttribute("viewBox") ?? "0 0 800 600").split(/\s+/).map(Number);
      svg.setAttribute("width", String(Math.ceil(w)));
      svg.setAttribute("height", String(Math.ceil(h)));
      svg.style.maxWidth = "none";
      return { x: 0, y: 0, width: Math.ceil(w), height: Math.ceil(h) };
    });
    await page.setViewport({ width: clip.width, height: clip.height, deviceScaleFactor: 1 });
    return await page.screenshot({ type: "png", clip });
  } finally {
    await page.close();
  }
}

/** The diagrams in a `pulumi stack export`, by TVD name, or a plain name-to-text map as is. */
export function diagramsOf(json: unknown): Record<string, string> {
  const resources = (json as { deployment?: { resources?: unknown[] } })?.deployment?.resources;
  if (!Array.isArray(resources)) return json as Record<string, string>;
  const out: Record<string, string> = {};
  for (const r of resources as { type?: string; urn?: string; outputs?: { diagram?: unknown } }[]) {
    if (r.type === "pulumi-tvd:index:TrustedVirtualDomain" && typeof r.outputs?.diagram === "string") {
      out[r.urn!.split("::").pop()!] = r.outputs.diagram;
    }
  }
  return out;
}

/**
 * All of stdin, read as a stream: `readFileSync(0)` fails with EAGAIN when stdin is a pipe the
 * writer (`pulumi stack export`) left non-blocking and has not filled yet.
 */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

async function main(argv: string[]): Promise<void> {
  const outIndex = argv.indexOf("--out");
  if (outIndex < 0 || !argv[outIndex + 1])
    throw new Error("usage: render-diagrams --out DIR [--png] < diagrams.json");
  const outDir = argv[outIndex + 1];
  const diagrams = diagramsOf(JSON.parse(await readStdin()));
  if (!Object.keys(diagrams).length)
    throw new Error("render-diagrams: no TrustedVirtualDomain diagram in the input");
  mkdirSync(outDir, { recursive: true });
  const browser = await launchChromium();
  try {
    const svgs = await renderSvgs(browser, diagrams);
    for (const [name, svg] of Object.entries(svgs)) {
      writeFileSync(path.join(outDir, `${name}.mmd`), diagrams[name]);
      const svgFile = path.join(outDir, `${name}.svg`);
      writeFileSync(svgFile, svg + "\n");
      console.log(`    ${svgFile}`);
      if (argv.includes("--png")) {
        const pngFile = path.join(outDir, `${name}.png`);
        writeFileSync(pngFile, await screenshotSvg(browser, svgFile));
        console.log(`    ${pngFile} (chromium's screenshot of it)`);
      }
    }
  } finally {
    await browser.close();
  }
}

if (path.basename(process.argv[1] ?? "") === "render-diagrams.ts") {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
