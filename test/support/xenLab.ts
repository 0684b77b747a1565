/**
 * The real-Xen lab of the "xen" test project: one Xen 4.17 host under QEMU, booted once per run
 * by test/xen/global-setup.ts into test/.work/xen-lab and powered off by its teardown.
 */
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import type { XenInventoryHost } from "../../lab/xen/boot";
import { labAccess, type LabAccess } from "./lab";

export const XEN_TEST_STATE = path.resolve(__dirname, "..", ".work", "xen-lab");
export const XEN_TEST_HOST = "xen-a";
/**
 * QEMU memory for the test host: dom0 keeps 768 MiB and Xen has ~1260 MiB for domains, room for
 * the single-host example's seven 128 MiB domains (stand-in stub domains need 96 MiB or more).
 */
export const XEN_TEST_MEMORY_MIB = 2048;

export function xenTestLab(): LabAccess<XenInventoryHost> {
  const file = path.join(XEN_TEST_STATE, "inventory.json");
  if (!existsSync(file)) {
    throw new Error(`no real-Xen test lab at ${file}: run the "xen" project (its global setup boots it)`);
  }
  return labAccess((JSON.parse(readFileSync(file, "utf8")) as { hosts: XenInventoryHost[] }).hosts);
}
