import { runChecked } from "../../lab/exec";

/** The lab runs its emulator from dist/ (and its libxlutil helper from dist/lab/bin). */
export default async function globalSetup(): Promise<void> {
  await runChecked(["npm", "run", "--silent", "build"], { cwd: `${__dirname}/../..` });
}
