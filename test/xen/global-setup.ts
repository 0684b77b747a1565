/**
 * Boots the real-Xen test host (and the packed consumer project the e2e programs link to). The
 * dom0 image comes from the cache when its recipe is unchanged; a cold build takes ~2 minutes.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { bootXenHost, buildRootfs, closeAllSessions, entryOfXen, stopXenHost } from "../../lab/xen/boot";
import { buildConsumer } from "../e2e/consumer";
import { buildLab } from "../lab/global-setup";
import { freePortRange } from "../support/lab";
import { XEN_TEST_HOST, XEN_TEST_MEMORY_MIB, XEN_TEST_STATE } from "../support/xenLab";

export default async function globalSetup(): Promise<void> {
  await buildConsumer();
  await buildLab(); // the conformance suite also runs on a local lab host
  // Every run starts from a fresh dom0 disk (and fresh keys): nothing an earlier run left on
  // the host, such as archived vTPM images, can make a test pass or fail.
  await stopXenHost(path.join(XEN_TEST_STATE, XEN_TEST_HOST));
  rmSync(XEN_TEST_STATE, { recursive: true, force: true });
  mkdirSync(XEN_TEST_STATE, { recursive: true });
  const t0 = Date.now();
  const buildDir = await buildRootfs();
  const built = (Date.now() - t0) / 1000;
  const host = await bootXenHost({
    name: XEN_TEST_HOST,
    index: 0,
    stateDir: XEN_TEST_STATE,
    port: await freePortRange(1),
    buildDir,
    memoryMiB: XEN_TEST_MEMORY_MIB,
    bootTimeoutSec: 900,
  });
  writeFileSync(
    path.join(XEN_TEST_STATE, "inventory.json"),
    JSON.stringify({ hosts: [entryOfXen(host)] }, null, 2) + "\n",
  );
  await closeAllSessions();
  console.log(
    `\nreal-Xen lab: dom0 image ${built.toFixed(1)}s, ${host.name} booted to SSH in ` +
      `${host.bootSeconds?.toFixed(1) ?? "(already running)"}s`,
  );
}
