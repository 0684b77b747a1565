/**
 * The TVD diagram (constructs/diagram.ts, issue 15.4): Mermaid text, pure. Its structure (a box
 * per host, a node per member inside its host's box, the bridge per host, one VXLAN link per
 * pair of hosts), its colours per trust state, and that no name can change that structure.
 */
import fc from "fast-check";
import {
  mermaidLabel,
  TRUST_STYLE,
  TrustState,
  trustStateOf,
  tvdDiagram,
  type DiagramMember,
  type TvdDiagramInput,
} from "../../constructs/diagram";

const EK = "e1".repeat(32);
const red: TvdDiagramInput = {
  tvd: "red",
  bridge: "tvd-red",
  vni: 4242,
  hosts: [
    { name: "lab-1", tunnelIp: "10.99.0.1" },
    { name: "lab-2", tunnelIp: "10.99.0.2" },
    { name: "lab-3", tunnelIp: "10.99.0.3" },
  ],
  members: [
    { domain: "red-02", host: "lab-2", ip: "10.50.0.11/24", trust: "not-attested" },
    { domain: "red-01", host: "lab-1", ip: "10.50.0.10/24", trust: "certified", ekFingerprint: EK },
    { domain: "red-04", host: "lab-1", ip: "10.50.0.13/24", trust: "certified", ekFingerprint: EK },
    { domain: "red-03", host: "lab-3", ip: "10.50.0.12/24", trust: "not-attested" },
  ],
};

/** Every quoted label's text as a reader sees it: entities decoded, `<br/>` as a line break. */
function labels(text: string): string[] {
  return [...text.matchAll(/"([^"\n]*)"/g)].map((m) => decodeLabel(m[1]));
}
const DECODE: Record<string, string> = { quot: '"', amp: "&", lt: "<", gt: ">" };
const decodeLabel = (body: string) =>
  body
    .split("<br/>")
    .map((line) =>
      line.replace(/#(\w+);/g, (_, e: string) =>
        /^\d+$/.test(e) ? String.fromCodePoint(Number(e)) : DECODE[e],
      ),
    )
    .join("\n");

/** The text with every label's body replaced: what Mermaid parses as the diagram's structure. */
const skeleton = (text: string) => text.replace(/"[^"\n]*"/g, '"L"');

/** The lines of one subgraph, between `subgraph <id>` and its `end`. */
function subgraph(text: string, id: string): string[] {
  const all = text.split("\n");
  const start = all.findIndex((l) => l.trim().startsWith(`subgraph ${id}[`));
  const end = all.indexOf("  end", start);
  expect(start).toBeGreaterThanOrEqual(0);
  return all.slice(start + 1, end);
}

describe("the TVD diagram", () => {
  const text = tvdDiagram(red);

  it("is a Mermaid flowchart with a box per host, titled with its name and tunnel address", () => {
    expect(text.split("\n")[0]).toBe("flowchart TB");
    expect(text).toContain('subgraph h0["lab-1 (tunnel 10.99.0.1)"]');
    expect(text).toContain('subgraph h1["lab-2 (tunnel 10.99.0.2)"]');
    expect(text).toContain('subgraph h2["lab-3 (tunnel 10.99.0.3)"]');
  });

  it("puts each member inside its own host's box, joined to the TVD's bridge there", () => {
    const lab1 = subgraph(text, "h0");
    expect(lab1).toEqual([
      '    h0br["bridge tvd-red"]:::bridge',
      `    h0m0["red-01<br/>10.50.0.10/24<br/>EK sha256:${EK.slice(0, 16)}"]:::certified`,
      "    h0m0 --- h0br",
      `    h0m1["red-04<br/>10.50.0.13/24<br/>EK sha256:${EK.slice(0, 16)}"]:::certified`,
      "    h0m1 --- h0br",
    ]);
    expect(subgraph(text, "h1")).toContain('    h1m0["red-02<br/>10.50.0.11/24"]:::not_attested');
    expect(subgraph(text, "h2")).toContain('    h2m0["red-03<br/>10.50.0.12/24"]:::not_attested');
  });

  it("links every pair of hosts' bridges by the TVD's VXLAN, labelled with its VNI", () => {
    const links = text.split("\n").filter((l) => l.includes("<-->"));
    expect(links).toEqual([
      '  h0br <-->|"VXLAN 4242"| h1br',
      '  h0br <-->|"VXLAN 4242"| h2br',
      '  h1br <-->|"VXLAN 4242"| h2br',
    ]);
    expect(tvdDiagram({ ...red, hosts: red.hosts.slice(0, 1), members: [] })).not.toContain("<-->");
  });

  it("is the same text whatever order the members come in", () => {
    expect(tvdDiagram({ ...red, members: [...red.members].reverse() })).toBe(text);
  });

  it("colours members by trust state: a class per state, each its own fill, and a legend of the states shown", () => {
    for (const state of Object.values(TrustState)) {
      expect(text).toContain(`classDef ${state.replace("-", "_")} ${TRUST_STYLE[state].style}`);
    }
    const fills = Object.values(TRUST_STYLE).map((s) => /fill:(#[0-9a-f]{6})/.exec(s.style)![1]);
    expect(new Set(fills).size).toBe(fills.length);
    expect(subgraph(text, "legend")).toEqual([
      "    direction TB",
      '    legend_certified["vTPM owned, EK/AK certified"]:::certified',
      '    legend_not_attested["not attested yet"]:::not_attested',
    ]);
    const allNew = tvdDiagram({
      ...red,
      members: red.members.map((m) => ({ ...m, trust: "not-attested", ekFingerprint: undefined })),
    });
    expect(allNew).not.toContain(":::certified");
    expect(allNew).not.toContain("EK sha256");
    expect(subgraph(allNew, "legend")).toEqual([
      "    direction TB",
      '    legend_not_attested["not attested yet"]:::not_attested',
    ]);
  });

  it("takes the trust state from a member's outputs: certified once its vTPM's EK is", () => {
    expect(trustStateOf({})).toBe("not-attested");
    expect(trustStateOf({ tpm: { ekFingerprint: "" } })).toBe("not-attested");
    expect(trustStateOf({ tpm: { ekFingerprint: EK } })).toBe("certified");
  });

  it("colours a member attested once it proved its baseline, with the attested legend", () => {
    const tpm = { ekFingerprint: EK };
    expect(trustStateOf({ tpm, attestation: { attested: true } })).toBe("attested");
    expect(trustStateOf({ tpm, attestation: { attested: false } })).toBe("refused");
    const attested = tvdDiagram({
      ...red,
      members: red.members.map((m) => (m.domain === "red-01" ? { ...m, trust: "attested" } : m)),
    });
    expect(attested).toMatch(
      /h0m0\["red-01<br\/>10\.50\.0\.10\/24<br\/>EK sha256:e1e1[0-9a-f]*"\]:::attested/,
    );
    expect(subgraph(attested, "legend")).toContain(
      '    legend_attested["boot attested: PCRs match the baseline"]:::attested',
    );
  });

  it("colours a member refused by its attestation apart from every other state, with its legend", () => {
    const refused = tvdDiagram({
      ...red,
      members: red.members.map((m) => (m.domain === "red-01" ? { ...m, trust: "refused" } : m)),
    });
    expect(refused).toMatch(/h0m0\["red-01<br\/>10\.50\.0\.10\/24<br\/>EK sha256:e1e1[0-9a-f]*"\]:::refused/);
    expect(subgraph(refused, "legend")).toContain(
      '    legend_refused["refused: PCRs off the baseline, held"]:::refused',
    );
  });

  it("shows a member that is on none of the TVD's hosts rather than dropping it", () => {
    const stray = tvdDiagram({ ...red, members: [{ ...red.members[0], host: "elsewhere" }] });
    expect(subgraph(stray, "hx")).toEqual(['    hxm0["red-02<br/>10.50.0.11/24"]:::not_attested']);
  });

  it("escapes what Mermaid would read in a label: quotes, entities, markup, markdown, comments, line breaks", () => {
    expect(mermaidLabel('a"b#c&d<e>f`g%%h\ni\u2028j')).toBe(
      "a#quot;b#35;c#amp;d#lt;e#gt;f#96;g#37;#37;h i j",
    );
  });

  // Names from the whole of Unicode (control characters, quotes, brackets, Mermaid keywords and
  // arrows, entity look-alikes): the diagram's skeleton never changes, every label is one quoted
  // string without a quote or line break inside, and reads back as the name.
  it("no name changes the diagram's structure (property)", () => {
    const name = fc.oneof(
      fc.string({ unit: "binary", maxLength: 24 }),
      fc.constantFrom(
        '"]',
        "end",
        "subgraph x",
        "--> h0",
        "%%{init: {}}%%",
        "#quot;",
        "<br/>",
        "`**md**`",
        "a\nend\n",
      ),
    );
    const member = (host: string, i: number): fc.Arbitrary<DiagramMember> =>
      fc
        .record({
          domain: name,
          host: fc.constant(host),
          ip: name,
          trust: fc.constantFrom(...Object.values(TrustState)),
          ekFingerprint: fc.option(name, { nil: undefined }),
        })
        .map((m) => ({ ...m, domain: `${i}${m.domain}` })); // distinct, so the order stays fixed
    const input = fc
      .record({
        tvd: name,
        bridge: name,
        hostNames: fc.uniqueArray(name, { minLength: 1, maxLength: 4 }),
        tunnel: name,
      })
      .chain(({ tvd, bridge, hostNames, tunnel }) =>
        fc.tuple(...hostNames.map((h, i) => member(h, i))).map((members) => ({
          tvd,
          bridge,
          vni: 4242,
          hosts: hostNames.map((h) => ({ name: h, tunnelIp: tunnel })),
          members,
        })),
      );
    fc.assert(
      fc.property(input, (hostile: TvdDiagramInput) => {
        // The same TVD with plain names: its structure is what the hostile one must have.
        const plain: TvdDiagramInput = {
          ...hostile,
          tvd: "t",
          bridge: "b",
          hosts: hostile.hosts.map((_h, i) => ({ name: `h${i}`, tunnelIp: "10.0.0.1" })),
          members: hostile.members.map((m, i) => ({
            ...m,
            domain: `${i}m`,
            host: `h${i}`,
            ip: "ip",
            ekFingerprint: m.ekFingerprint === undefined ? undefined : "f",
          })),
        };
        const out = tvdDiagram(hostile);
        expect(skeleton(out)).toBe(skeleton(tvdDiagram(plain)));
        expect(out.split("\n").length).toBe(tvdDiagram(plain).split("\n").length);
        const shown = labels(out);
        const oneLine = (s: string) => s.replace(/[\p{Cc}\p{Zl}\p{Zp}]/gu, " ");
        for (const h of hostile.hosts) expect(shown).toContain(oneLine(`${h.name} (tunnel ${h.tunnelIp})`));
        for (const m of hostile.members) {
          const details = [
            m.domain,
            m.ip,
            ...(m.ekFingerprint ? [`EK sha256:${m.ekFingerprint.slice(0, 16)}`] : []),
          ];
          expect(shown).toContain(details.map(oneLine).join("\n"));
        }
      }),
      { numRuns: 300, seed: 1504 },
    );
  });
});
