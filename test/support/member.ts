/**
 * A TVD member for tests against a real TPM: a throwaway swtpm (TPM 1.2 as vtpm-stubdom gives it,
 * or TPM 2.0) with the member agent's config and state, and the agent's command line
 * (agent/bin/tvd-agent, built by `bash agent/build`; scripts/setup builds it).
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { run, startSwtpm, type Swtpm } from "./swtpm";

export const AGENT = path.join(__dirname, "../../agent/bin/tvd-agent");

export interface Member {
  readonly version: "1.2" | "2.0";
  readonly tpm: Swtpm;
  /** The agent's --tpm, --config, --state and --tpm-version arguments. */
  readonly args: readonly string[];
}

/** A missing agent binary is a broken setup, not a reason to skip. */
export function requireAgent(): void {
  if (!existsSync(AGENT)) throw new Error(`${AGENT} is not built: run bash agent/build (scripts/setup does)`);
}

export async function startMember(version: "1.2" | "2.0"): Promise<Member> {
  // TPM 1.2 as vtpm-stubdom gives it: enabled, activated, with an EK and no owner.
  const tpm = await startSwtpm(version, async (state) => {
    if (version === "1.2") await run("swtpm_setup", ["--tpm-state", state, "--createek"]);
  });
  const config = path.join(tpm.dir, "agent.json");
  const auth = (): string => randomBytes(32).toString("hex");
  await writeFile(config, JSON.stringify({ version: 1, ownerAuth: auth(), srkAuth: auth() }), {
    mode: 0o600,
  });
  const state = path.join(tpm.dir, "agent-state");
  await mkdir(state, { mode: 0o700 });
  return {
    version,
    tpm,
    args: ["--tpm", tpm.socket, "--config", config, "--state", state, "--tpm-version", version],
  };
}

/** Runs one agent command (report, activate, quote); its JSON answer on stdout, also on failure. */
export async function agent(member: Member, command: string, input?: unknown): Promise<string> {
  const { stdout } = await run(AGENT, [command, ...member.args], {
    input: input === undefined ? undefined : JSON.stringify(input),
    allowFailure: input !== undefined,
  });
  return stdout;
}
