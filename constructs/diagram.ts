/**
 * A picture of one Trusted Virtual Domain as Mermaid `flowchart` text: a box per host with the
 * TVD's bridge there and the members on it, the VXLAN links between the hosts, and each member
 * coloured by its trust state. Pure (DESIGN.md 3, rule 1): the text is a function of the plan and
 * the members' outputs alone, so it is unit-tested without an engine and the same plan always
 * gives the same text, byte for byte (a diagram checked in only changes when the TVD does).
 *
 * Names reach the text only as labels, never as node ids (ids are positional: h0, h0m1...), and
 * every label goes through `mermaidLabel`, so no host or member name can change the diagram's
 * structure, whatever characters it holds.
 */

/**
 * How far the TVD vouches for a member's vTPM. A diagram colours members by it; `TRUST_STYLE`
 * below gives each state a colour (the compiler checks that the record is complete).
 */
export const TrustState = {
  /**
   * Admitted by attestation: its vTPM quoted, with the certified AK over a fresh nonce, PCRs that
   * match the baseline the TVD declares (measuredBoot).
   */
  Attested: "attested",
  /**
   * Refused by attestation: its quote did not prove the baseline (or did not verify). Its port is
   * held and its certificates are on hold in the TVD's CRL.
   */
  Refused: "refused",
  /** The system owns the member's vTPM and the TVD's CA certified its EK and AK. */
  Certified: "certified",
  /** No certified EK/AK for it yet: not deployed yet, its agent not reported, or no VtpmIdentity. */
  NotAttested: "not-attested",
} as const;
export type TrustState = (typeof TrustState)[keyof typeof TrustState];

/** Fill, stroke and text colours per state, and the legend's words for it. */
export const TRUST_STYLE: Readonly<Record<TrustState, { readonly style: string; readonly legend: string }>> =
  {
    attested: {
      style: "fill:#cfe8ff,stroke:#0b4f9c,stroke-width:3px,color:#062a52",
      legend: "boot attested: PCRs match the baseline",
    },
    refused: {
      style: "fill:#ffd6d6,stroke:#b00020,stroke-width:3px,stroke-dasharray:6 3,color:#5c0011",
      legend: "refused: PCRs off the baseline, held",
    },
    certified: {
      style: "fill:#d8f0dc,stroke:#2e7d32,stroke-width:2px,color:#1b3d1f",
      legend: "vTPM owned, EK/AK certified",
    },
    "not-attested": {
      style: "fill:#fff1cc,stroke:#b26a00,stroke-width:2px,stroke-dasharray:4 3,color:#4a3000",
      legend: "not attested yet",
    },
  };

export interface DiagramHost {
  readonly name: string;
  /** Its address on the network the TVD's VXLAN runs over. */
  readonly tunnelIp: string;
}

export interface DiagramMember {
  /** Its xl domain name, `<tvd>-<name>`. */
  readonly domain: string;
  /** The name of one of the diagram's hosts. */
  readonly host: string;
  /** Its address in the TVD's subnet, with the prefix ("10.50.0.11/24"). */
  readonly ip: string;
  readonly trust: TrustState;
  /** Hex SHA-256 of its vTPM's EK, once known. */
  readonly ekFingerprint?: string;
}

export interface TvdDiagramInput {
  readonly tvd: string;
  readonly bridge: string;
  readonly vni: number;
  readonly hosts: readonly DiagramHost[];
  readonly members: readonly DiagramMember[];
}

/**
 * The state a member's outputs show: attested once it proved the baseline, refused when its last
 * attestation failed, certified once its vTPM's EK/AK are.
 */
export function trustStateOf(member: {
  readonly tpm?: { readonly ekFingerprint: string };
  readonly attestation?: { readonly attested: boolean };
}): TrustState {
  if (member.attestation?.attested === true) return TrustState.Attested;
  if (member.attestation?.attested === false) return TrustState.Refused;
  return member.tpm?.ekFingerprint ? TrustState.Certified : TrustState.NotAttested;
}

// Mermaid decodes `#name;` and `#code;` in labels into HTML entities. Everything that could end a
// quoted label ("), start an entity (#, &), become markup (< > and the backtick that opens a
// markdown label) or a comment/directive (%) is written as an entity; line breaks, which end a
// statement, become spaces.
const ENTITY: Readonly<Record<string, string>> = {
  '"': "#quot;",
  "#": "#35;",
  "&": "#amp;",
  "<": "#lt;",
  ">": "#gt;",
  "`": "#96;",
  "%": "#37;",
};

/** Text as a Mermaid label body (what goes between `["` and `"]`): one line, nothing active. */
export function mermaidLabel(text: string): string {
  return text.replace(/[\p{Cc}\p{Zl}\p{Zp}]/gu, " ").replace(/["#&<>`%]/g, (c) => ENTITY[c]);
}

/** A label of several lines, each escaped; Mermaid breaks lines at `<br/>`. */
const lines = (...parts: string[]) => `["${parts.map(mermaidLabel).join("<br/>")}"]`;

/** A fingerprint as the diagram shows it, as the summary table does. */
const shortFingerprint = (hex: string) => `sha256:${hex.slice(0, 16)}`;

/** Mermaid flowchart text for one TVD. Pure: the same input gives the same text. */
export function tvdDiagram(input: TvdDiagramInput): string {
  // Top to bottom: members above their host's bridge, hosts below one another along the links.
  const out: string[] = ["flowchart TB"];
  for (const [state, { style }] of Object.entries(TRUST_STYLE)) {
    out.push(`  classDef ${classOf(state as TrustState)} ${style}`);
  }
  out.push("  classDef bridge fill:#e3efff,stroke:#1f5fa8,color:#0d2b4d");

  const hostIndex = new Map(input.hosts.map((h, i) => [h.name, i]));
  // Members in a stable order (by domain), so the text does not depend on the order given.
  const members = [...input.members].sort((a, b) => (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0));
  input.hosts.forEach((host, i) => {
    const on = members.filter((m) => m.host === host.name);
    out.push(`  subgraph h${i}${lines(`${host.name} (tunnel ${host.tunnelIp})`)}`);
    out.push(`    h${i}br${lines(`bridge ${input.bridge}`)}:::bridge`);
    on.forEach((m, j) => {
      const details = [m.domain, m.ip];
      if (m.ekFingerprint) details.push(`EK ${shortFingerprint(m.ekFingerprint)}`);
      out.push(`    h${i}m${j}${lines(...details)}:::${classOf(m.trust)}`);
      out.push(`    h${i}m${j} --- h${i}br`);
    });
    out.push("  end");
  });
  const stray = members.filter((m) => !hostIndex.has(m.host));
  if (stray.length) {
    // The plan never places a member off the TVD's hosts; shown rather than dropped if it did.
    out.push(`  subgraph hx${lines("not on any of the TVD's hosts")}`);
    stray.forEach((m, j) => out.push(`    hxm${j}${lines(m.domain, m.ip)}:::${classOf(m.trust)}`));
    out.push("  end");
  }
  // One VXLAN link per pair of hosts: every host's TvdNetwork peers with all the others.
  for (let a = 0; a < input.hosts.length; a++) {
    for (let b = a + 1; b < input.hosts.length; b++) {
      out.push(`  h${a}br <-->|"VXLAN ${input.vni}"| h${b}br`);
    }
  }
  // The legend names only the states present, so a diagram never shows a colour it does not use.
  const present = Object.keys(TRUST_STYLE).filter((s) => members.some((m) => m.trust === s)) as TrustState[];
  if (present.length) {
    out.push(`  subgraph legend${lines(`TVD ${input.tvd}: trust state`)}`);
    out.push("    direction TB");
    for (const s of present)
      out.push(`    legend_${classOf(s)}${lines(TRUST_STYLE[s].legend)}:::${classOf(s)}`);
    out.push("  end");
  }
  return out.join("\n") + "\n";
}

/** A class name Mermaid accepts for a state: letters, digits and '_' only. */
const classOf = (state: TrustState) => state.replace(/[^A-Za-z0-9]/g, "_");
