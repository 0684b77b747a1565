/**
 * Powers the real-Xen test host off should a test file's afterAll not have run (a worker that
 * died, a run cut short); the files stay in test/.work/xen-lab.
 */
import { stopXenTestHost } from "../support/xenLab";

export default async function globalTeardown(): Promise<void> {
  await stopXenTestHost();
}
