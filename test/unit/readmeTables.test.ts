/**
 * The README's change-class tables are generated from the resource definitions, so they cannot
 * drift from what the code does. `UPDATE_README=1 npx jest test/unit/readmeTables.test.ts`
 * rewrites them (then `npx prettier --write README.md` aligns the columns).
 */
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import type { ChangeClass } from "../../provider/core/define";
import * as guest from "../../provider/resources/guest/provider";
import * as hostFacts from "../../provider/resources/hostFacts/provider";
import * as memberAttestation from "../../provider/resources/memberAttestation/provider";
import * as memberIdentity from "../../provider/resources/memberIdentity/provider";
import * as memberPort from "../../provider/resources/memberPort/provider";
import * as revocationList from "../../provider/resources/revocationList/provider";
import * as seedImage from "../../provider/resources/seedImage/provider";
import * as tvdAuthority from "../../provider/resources/tvdAuthority/provider";
import * as tvdNetwork from "../../provider/resources/tvdNetwork/provider";
import * as vtpm from "../../provider/resources/vtpm/provider";
import * as vtpmIdentity from "../../provider/resources/vtpmIdentity/provider";
import * as vtpmManager from "../../provider/resources/vtpmManager/provider";

const README = path.resolve(__dirname, "..", "..", "README.md");

const definitions = [
  hostFacts.definition,
  vtpmManager.definition,
  vtpm.definition,
  guest.definition,
  tvdAuthority.definition,
  memberIdentity.definition,
  seedImage.definition,
  tvdNetwork.definition,
  vtpmIdentity.definition,
  memberAttestation.definition,
  memberPort.definition,
  revocationList.definition,
] as Array<{ kind: string; changes: Record<string, ChangeClass> }>;

const MEANING: Record<ChangeClass, string> = {
  replace: "replaces the resource",
  resetState:
    "resets what cannot be made again (a key image, a UUID, a vTPM's identity): refused without `allowStateReset`",
  restart: "rewrites the config; restarts the domain only if the running domain differs",
  inPlace: "applied in place",
};

function table(def: { kind: string; changes: Record<string, ChangeClass> }): string {
  const rows = (Object.keys(MEANING) as ChangeClass[])
    .map((c) => [c, Object.keys(def.changes).filter((k) => def.changes[k] === c)] as const)
    .filter(([, keys]) => keys.length)
    .map(
      ([c, keys]) =>
        `| ${MEANING[c]} | ${keys.map((k) => (k === "connection" && c === "replace" ? "`connection` (its host)" : `\`${k}\``)).join(", ")} |`,
    );
  return [`| **${def.kind}**: a change of … | inputs |`, "| --- | --- |", ...rows].join("\n");
}

const START =
  "<!-- change-classes: generated from the resource definitions by test/unit/readmeTables.test.ts -->";
const END = "<!-- /change-classes -->";

function generated(): string {
  return [START, "", definitions.map(table).join("\n\n"), "", END].join("\n");
}

/** Table rows compare without the padding prettier adds. */
const normalize = (s: string) =>
  s
    .split("\n")
    .map((l) => l.replace(/\s+/g, " ").replace(/-{3,}/g, "---").trim())
    .filter(Boolean)
    .join("\n");

it("the README's change-class tables are those of the resource definitions", () => {
  const text = readFileSync(README, "utf8");
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  if (process.env.UPDATE_README) {
    if (start < 0 || end < 0) throw new Error(`README.md has no ${START} ... ${END} block to rewrite`);
    writeFileSync(README, text.slice(0, start) + generated() + text.slice(end + END.length));
    return;
  }
  expect(start).toBeGreaterThan(0);
  expect(normalize(text.slice(start, end + END.length))).toBe(normalize(generated()));
});

it("every kind's change record names exactly its schema's inputs", () => {
  for (const def of definitions as unknown as Array<{ kind: string; changes: object; shape: object }>) {
    expect({ kind: def.kind, keys: Object.keys(def.changes).sort() }).toEqual({
      kind: def.kind,
      keys: Object.keys(def.shape).sort(),
    });
  }
});
