/**
 * What the real-Xen tests need before any file runs: the packed consumer project the e2e
 * programs link to, and the local lab (the conformance suite also runs on a local lab host).
 * The real-Xen host itself is booted by the test file (test/support/xenLab.ts), so QEMU runs
 * only while its tests do.
 */
import { buildConsumer } from "../e2e/consumer";
import { buildLab } from "../lab/global-setup";

export default async function globalSetup(): Promise<void> {
  await buildConsumer();
  await buildLab();
}
