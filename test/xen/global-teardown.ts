/** Powers the real-Xen test host off (its files stay in test/.work/xen-lab). */
import * as path from "node:path";
import { closeAllSessions, stopXenHost } from "../../lab/xen/boot";
import { XEN_TEST_HOST, XEN_TEST_STATE } from "../support/xenLab";

export default async function globalTeardown(): Promise<void> {
  await stopXenHost(path.join(XEN_TEST_STATE, XEN_TEST_HOST));
  await closeAllSessions();
}
