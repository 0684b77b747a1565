/**
 * TrustedVirtualDomain.diagram wired to the construct (issue 15.4): the demo program
 * (examples/two-tvds) runs on paper (test/support/paperPulumi.ts: Pulumi's mocks, nothing
 * registers, no lab), and each TVD's diagram shows the demo's hosts and members, coloured by what
 * the members' VtpmIdentity outputs say.
 *
 * TVD_DIAGRAMS_OUT=<file> also writes the diagrams as JSON (TVD name to Mermaid text), for
 * `node scripts/render-diagrams.ts` when the demo cannot run on the lab.
 */
jest.mock("@pulumi/pulumi", () => jest.requireActual("../support/paperPulumi").paperPulumi());
// The example imports the package by name, as users do; here it gets this checkout's source, and
// every TrustedVirtualDomain it makes is kept for the test.
const mockTvds: { tvdName: string; diagram: unknown }[] = [];
jest.mock(
  "pulumi-tvd",
  () => {
    const actual = jest.requireActual("../../index");
    class KeptTvd extends actual.TrustedVirtualDomain {
      constructor(...args: unknown[]) {
        super(...args);
        mockTvds.push(this as unknown as { tvdName: string; diagram: unknown });
      }
    }
    return { ...actual, TrustedVirtualDomain: KeptTvd };
  },
  { virtual: true },
);

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { writeMeasuredBoot } from "../../lab/measuredTemplate";
import { paperOutputs, resolved, takePaperResources } from "../support/paperPulumi";

/**
 * The demo's inventory as `npm run lab -- up --hosts 3` writes it, with the lab's names, and the
 * template's boot files beside it (boot/), from which the program computes its baseline.
 */
function inventory(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "tvd-demo-diagram-"));
  writeFileSync(path.join(dir, "id"), "not a key: nothing connects on paper\n");
  const hosts = [1, 2, 3].map((i) => ({
    name: `lab-${i}`,
    host: "127.0.0.1",
    port: 22000 + i,
    user: "root",
    privateKeyPath: path.join(dir, "id"),
    hostKeyFingerprint: "SHA256:paper",
    underlayIp: `10.99.0.${i}`,
  }));
  writeFileSync(path.join(dir, "inventory.json"), JSON.stringify({ hosts }));
  writeMeasuredBoot(dir);
  return path.join(dir, "inventory.json");
}

/** Runs the demo program afresh and returns each TVD's diagram by name. */
async function demoDiagrams(): Promise<Record<string, string>> {
  mockTvds.length = 0;
  pulumi.runtime.setConfig(`${pulumi.getProject()}:inventory`, inventory());
  jest.isolateModules(() => {
    jest.requireActual("../../examples/two-tvds/index");
  });
  takePaperResources();
  const out: Record<string, string> = {};
  for (const t of mockTvds) out[t.tvdName] = (await resolved(t.diagram)) as string;
  return out;
}

const fingerprint = (name: string) => Buffer.from(name).toString("hex").padEnd(64, "0").slice(0, 64);

/** What resources compute, empty: serials, UUIDs and fingerprints, none established yet. */
const notYet = () => "";

describe("the demo's TVD diagrams", () => {
  beforeEach(() => paperOutputs(notYet));

  it("show red on three hosts with six members and blue on two with three, none attested before up", async () => {
    const diagrams = await demoDiagrams();
    expect(Object.keys(diagrams).sort()).toEqual(["blue", "red"]);
    const { red, blue } = diagrams;
    for (const i of [1, 2, 3]) expect(red).toContain(`["lab-${i} (tunnel 10.99.0.${i})"]`);
    expect(blue).not.toContain("lab-3");
    for (const m of ["01", "02", "03", "04", "05", "06"])
      expect(red).toMatch(new RegExp(`\\["red-${m}<br/>`));
    for (const m of ["web", "api", "db"]) expect(blue).toMatch(new RegExp(`\\["blue-${m}<br/>`));
    // blue's db is placed on the second host by the program.
    expect(blue).toMatch(/subgraph h1\["lab-2[^]*\["blue-db<br\/>[^]*\n {2}end/);
    expect(red.match(/<-->/g)).toHaveLength(3);
    expect(blue.match(/<-->/g)).toHaveLength(1);
    expect(red).not.toContain(":::certified");
    expect(red.match(/:::not_attested/g)).toHaveLength(6 + 1); // and the legend's
    if (process.env.TVD_DIAGRAMS_OUT)
      writeFileSync(process.env.TVD_DIAGRAMS_OUT, JSON.stringify(diagrams, null, 2));
  });

  it("colour a member certified, with its EK's short fingerprint, once its VtpmIdentity reports one", async () => {
    paperOutputs((kind, key, props) =>
      kind === "VtpmIdentity" && key.endsWith("Fingerprint")
        ? fingerprint(String(props.memberName))
        : notYet(),
    );
    const { red } = await demoDiagrams();
    expect(red.match(/:::certified/g)).toHaveLength(6 + 1);
    expect(red).not.toContain(":::not_attested");
    expect(red).toContain(`EK sha256:${fingerprint("red-01").slice(0, 16)}`);
  });

  it("colour a member attested once its MemberAttestation proved the baseline pv-grub measured", async () => {
    paperOutputs((kind, key, props) => {
      if (kind === "VtpmIdentity" && key.endsWith("Fingerprint"))
        return fingerprint(String(props.memberName));
      if (kind === "MemberAttestation" && key === "attested") return true;
      return notYet();
    });
    const { red, blue } = await demoDiagrams();
    expect(red.match(/:::attested/g)).toHaveLength(6 + 1);
    expect(blue.match(/:::attested/g)).toHaveLength(3 + 1);
    expect(red).not.toContain(":::certified");
  });
});
