import { runChecked } from "../../lab/exec";

/**
 * Builds the lab (`npm run build:lab`): its emulator runs from build/lab, its libxlutil helper from
 * build/lab/bin. The lab, e2e and xen projects all need it; their global setups run in one process,
 * so it is built once per run.
 */
export async function buildLab(): Promise<void> {
  if (process.env.TVD_LAB_BUILT === "1") return;
  await runChecked(["npm", "run", "--silent", "build:lab"], { cwd: `${__dirname}/../..` });
  process.env.TVD_LAB_BUILT = "1";
}

export default async function globalSetup(): Promise<void> {
  await buildLab();
}
