/**
 * The real-Xen lab of the "xen" test project: one Xen 4.17 host under QEMU in test/.work/xen-lab,
 * booted by the test file that uses it (bootXenTestHost in its beforeAll) and powered off in its
 * afterAll, so QEMU's core is busy only while real-Xen tests run. The project's global teardown
 * powers it off as well, should a worker die before its afterAll.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  bootXenHost,
  buildRootfs,
  closeAllSessions,
  entryOfXen,
  stopXenHost,
  type XenInventoryHost,
} from "../../lab/xen/boot";
import { freePortRange, labAccess, type LabAccess } from "./lab";

export const XEN_TEST_STATE = path.resolve(__dirname, "..", ".work", "xen-lab");
export const XEN_TEST_HOST = "xen-a";
/**
 * QEMU memory for the test host: dom0 keeps 768 MiB and Xen has ~1260 MiB for domains, room for
 * the single-host example's seven 128 MiB domains (stand-in stub domains need 96 MiB or more).
 */
export const XEN_TEST_MEMORY_MIB = 2048;

/**
 * The weight of QEMU's session while other test files run beside it: -20 gives it ~95 % of the
 * CPU it asks for against a handful of busy sessions (the Jest workers' one, the lab hosts' SSH
 * sessions), so dom0's hotplug scripts finish within libxl's timeouts; the other workers take
 * what it leaves. `nice` alone does not reach QEMU: it runs in a session of its own.
 */
export const XEN_TEST_SESSION_NICE = -20;

/**
 * Boots the test host and returns SSH access to it. The dom0 image comes from the cache when its
 * recipe is unchanged (a cold build takes ~2 minutes). Every boot starts from a fresh dom0 disk
 * and fresh keys: nothing an earlier run left on the host, such as archived vTPM images, can make
 * a test pass or fail.
 */
export async function bootXenTestHost(): Promise<LabAccess<XenInventoryHost>> {
  takeBackPriority();
  await stopXenTestHost();
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
    sessionNice: XEN_TEST_SESSION_NICE,
  });
  const entry = entryOfXen(host);
  // The inventory, for a person who wants to look at the host while the tests run.
  writeFileSync(
    path.join(XEN_TEST_STATE, "inventory.json"),
    JSON.stringify({ hosts: [entry] }, null, 2) + "\n",
  );
  console.log(
    `real-Xen lab: dom0 image ${built.toFixed(1)}s, ${host.name} booted to SSH in ` +
      `${host.bootSeconds?.toFixed(1) ?? "(already running)"}s`,
  );
  return labAccess([entry]);
}

/**
 * scripts/test starts Jest `TVD_TEST_NICE` steps nicer than itself; this worker takes those steps
 * back, so that its own Pulumi CLI, programs and providers run ahead of the other workers' (QEMU
 * itself gets XEN_TEST_SESSION_NICE), and real Xen, whose hotplug scripts time
 * out when its dom0 starves (seen: `xl create` of a vTPM failing with "/etc/xen/scripts/block
 * failed" under a loaded machine), gets its core ahead of the other workers' lab tests. Taking
 * priority back needs root (CAP_SYS_NICE); without it the host runs at the workers' priority.
 */
function takeBackPriority(): void {
  const steps = Number(process.env.TVD_TEST_NICE ?? 0);
  if (!(steps > 0)) return;
  try {
    os.setPriority(os.getPriority() - steps);
  } catch (err) {
    console.log(`real-Xen lab: QEMU runs at the workers' priority (${(err as Error).message})`);
  }
}

/** Powers the test host off (its files stay in test/.work/xen-lab); nothing when it is not running. */
export async function stopXenTestHost(): Promise<void> {
  await stopXenHost(path.join(XEN_TEST_STATE, XEN_TEST_HOST));
  await closeAllSessions();
}
