/// <reference lib="dom" />
// The functions passed to page.evaluate run in the browser page: they see its DOM.
/**
 * The TVD diagrams in a real browser (issue 15.4): Debian's headless chromium, driven by
 * puppeteer-core. The SVGs the README shows (docs/diagrams/, written by `npm run demo`) open on
 * their own and show the demo's hosts, members and links, and a screenshot of each is a drawing,
 * not a blank page; and diagrams of hostile names go through Mermaid's own parser and renderer
 * with every name shown as text. No lab.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import fc from "fast-check";
import type { Browser } from "puppeteer-core";
import { TRUST_STYLE, TrustState, tvdDiagram, type TvdDiagramInput } from "../../constructs/diagram";
import { launchChromium, renderSvgs, screenshotSvg } from "../../scripts/render-diagrams";

const docs = path.join(__dirname, "../../docs/diagrams");
let browser: Browser;

beforeAll(async () => {
  browser = await launchChromium();
}, 30_000);
afterAll(async () => {
  await browser?.close();
});

/** The texts of an SVG file as chromium parsed it (every label, whitespace removed). */
async function textsOf(svgFile: string): Promise<string[]> {
  const page = await browser.newPage();
  try {
    await page.goto(`file://${svgFile}`, { waitUntil: "load" });
    return await page.evaluate(() =>
      document.documentElement.localName === "svg"
        ? Array.from(document.querySelectorAll("text, foreignObject")).map((t) =>
            (t.textContent ?? "").replace(/\s+/g, ""),
          )
        : [],
    );
  } finally {
    await page.close();
  }
}

/** Pixels of a PNG by colour, counted by chromium itself (the PNG as a data: URL on a canvas). */
async function colours(
  png: Uint8Array,
  wanted: string[],
): Promise<{ total: number; white: number; counts: number[] }> {
  const page = await browser.newPage();
  try {
    return await page.evaluate(
      async (b64, hexes) => {
        const img = new Image();
        img.src = `data:image/png;base64,${b64}`;
        await img.decode();
        const canvas = document.createElement("canvas");
        canvas.width = img.width;
        canvas.height = img.height;
        const ctx = canvas.getContext("2d")!;
        ctx.drawImage(img, 0, 0);
        const data = ctx.getImageData(0, 0, img.width, img.height).data;
        const rgb = hexes.map((h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)));
        const counts = rgb.map(() => 0);
        let white = 0;
        for (let i = 0; i < data.length; i += 4) {
          if (data[i] > 245 && data[i + 1] > 245 && data[i + 2] > 245) white++;
          rgb.forEach(([r, g, b], k) => {
            if (Math.abs(data[i] - r) < 3 && Math.abs(data[i + 1] - g) < 3 && Math.abs(data[i + 2] - b) < 3)
              counts[k]++;
          });
        }
        return { total: data.length / 4, white, counts };
      },
      Buffer.from(png).toString("base64"),
      wanted,
    );
  } finally {
    await page.close();
  }
}

const fillOf = (state: TrustState) => /fill:(#[0-9a-f]{6})/.exec(TRUST_STYLE[state].style)![1];

describe("the demo's diagrams in headless chromium", () => {
  const demo = {
    red: {
      hosts: [1, 2, 3],
      members: ["red-01", "red-02", "red-03", "red-04", "red-05", "red-06"],
      links: 3,
    },
    blue: { hosts: [1, 2], members: ["blue-web", "blue-api", "blue-db"], links: 1 },
  };
  for (const [tvd, want] of Object.entries(demo)) {
    it(`${tvd}.svg shows its hosts, members, bridge and VXLAN links`, async () => {
      const file = path.join(docs, `${tvd}.svg`);
      const texts = await textsOf(file);
      // The demo's lab names its hosts dom0-a, dom0-b, ... with tunnel addresses 10.99.0.1, ...
      for (const h of want.hosts) {
        expect(texts).toContain(`dom0-${"abc"[h - 1]}(tunnel10.99.0.${h})`);
      }
      for (const m of want.members) expect(texts.some((t) => t.startsWith(`${m}10.50.0.`))).toBe(true);
      expect(texts.filter((t) => t === `bridgetvd-${tvd}`)).toHaveLength(want.hosts.length);
      const vni = /VXLAN (\d+)/.exec(readFileSync(path.join(docs, `${tvd}.mmd`), "utf8"))![1];
      expect(texts.filter((t) => t === `VXLAN${vni}`)).toHaveLength(want.links);
    });

    it(`${tvd}.svg's screenshot is a drawing in the trust states' colours, not a blank page`, async () => {
      const png = await screenshotSvg(browser, path.join(docs, `${tvd}.svg`));
      const states = Object.values(TrustState);
      const { total, white, counts } = await colours(png, states.map(fillOf));
      expect(total).toBeGreaterThan(100 * 100);
      expect(white / total).toBeLessThan(0.9);
      // The states the diagram's members are in show as filled boxes (the legend's at least).
      const mmd = readFileSync(path.join(docs, `${tvd}.mmd`), "utf8");
      states.forEach((s, k) => {
        if (mmd.includes(`:::${s.replace("-", "_")}`)) expect(counts[k]).toBeGreaterThan(1000);
      });
    });
  }
});

describe("hostile names in headless chromium", () => {
  // Names without whitespace (SVG text collapses it) from quotes, brackets, entity and markup
  // look-alikes, Mermaid's own keywords and arrows, and any Unicode letter.
  const hostileName = fc
    .array(
      fc.oneof(
        fc.constantFrom(
          '"',
          "]",
          "[",
          "#quot;",
          "#",
          ";",
          "<b>",
          "&amp;",
          "%%",
          "`",
          "-->",
          "|",
          "end",
          ":::x",
          "{",
          "}",
        ),
        fc.string({ minLength: 1, maxLength: 3 }).filter((s) => !/\s/.test(s)),
      ),
      { minLength: 1, maxLength: 6 },
    )
    .map((parts) => parts.join(""));

  it("render through Mermaid's parser, with every host and member name shown as text", async () => {
    const inputs = fc.sample(
      fc.tuple(
        fc.uniqueArray(hostileName, { minLength: 2, maxLength: 2 }),
        fc.uniqueArray(hostileName, { minLength: 3, maxLength: 3 }),
      ),
      { numRuns: 12, seed: 1504 },
    );
    const diagrams: Record<string, string> = {};
    const names: Record<string, string[]> = {};
    inputs.forEach(([hosts, members], i) => {
      const input: TvdDiagramInput = {
        tvd: "t",
        bridge: "tvd-t",
        vni: 4096,
        hosts: hosts.map((h, k) => ({ name: h, tunnelIp: `10.99.0.${k + 1}` })),
        members: members.map((m, k) => ({
          domain: `${k}${m}`,
          host: hosts[k % 2],
          ip: "10.50.0.10/24",
          trust: k % 2 ? "certified" : "not-attested",
        })),
      };
      diagrams[`d${i}`] = tvdDiagram(input);
      names[`d${i}`] = [
        ...hosts.map((h, k) => `${h}(tunnel10.99.0.${k + 1})`),
        ...input.members.map((m) => m.domain),
      ];
    });
    const svgs = await renderSvgs(browser, diagrams);
    const page = await browser.newPage();
    try {
      for (const [id, svg] of Object.entries(svgs)) {
        const texts = await page.evaluate((markup) => {
          const doc = new DOMParser().parseFromString(markup, "image/svg+xml");
          if (doc.querySelector("parsererror")) return ["<parsererror>"];
          return Array.from(doc.querySelectorAll("text, foreignObject")).map((t) =>
            (t.textContent ?? "").replace(/\s+/g, ""),
          );
        }, svg);
        expect(texts).not.toContain("<parsererror>");
        for (const n of names[id]) expect([n, texts.some((t) => t.includes(n))]).toEqual([n, true]);
      }
    } finally {
      await page.close();
    }
  }, 60_000);
});
