/**
 * node build/lab/xen/measure.js [--out bench/results/xen-lab.json] [--keep] [--cold]
 *
 * Boots one real Xen host (building or reusing the dom0 image), measures it, creates a stand-in
 * vTPM manager, a stand-in vTPM and a guest on a qcow2 overlay with real xl, records what xl
 * printed, times the conformance suite, and powers the host off (unless --keep). Cold build numbers come from the build's `recipe` file.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runScenarios } from "../conformance/run";
import {
  bootXenHost,
  buildRootfs,
  closeAllSessions,
  qemuMemory,
  repoRoot,
  stopXenHost,
  xenSession,
  type XenHostRecord,
} from "./boot";

const MGR_UUID = "7e6897a4-111d-4ec4-86d1-5fa918d9daae";
const VTPM_UUID = "ac0a5b9e-cbe2-4c07-b43b-1d69e46fb839";

const guestConfig = [
  'name = "web1"',
  "memory = 128",
  "vcpus = 1",
  'kernel = "/usr/lib/xen/boot/vmlinuz"',
  'ramdisk = "/usr/lib/xen/boot/initrd.img"',
  'cmdline = "root=/dev/xvda ro console=hvc0"',
  'disk = ["format=qcow2, vdev=xvda, access=rw, target=/var/lib/xen/images/web1.qcow2"]',
  'vtpm = ["backend=web1-vtpm"]',
  "",
].join("\n");

export const standInConfigs = {
  "vtpmmgr.cfg": [
    'name = "vtpmmgr"',
    'kernel = "/usr/lib/xen/boot/vtpmmgr-stubdom.gz"',
    'ramdisk = "/usr/lib/xen/boot/vtpmmgr-stubdom-initrd.gz"',
    'extra = "console=hvc0 quiet"',
    "memory = 128",
    `uuid = "${MGR_UUID}"`,
    'disk = ["file:/var/lib/xen/vtpm/mgr.img,hda,w"]',
    "",
  ].join("\n"),
  "web1-vtpm.cfg": [
    'name = "web1-vtpm"',
    'kernel = "/usr/lib/xen/boot/vtpm-stubdom.gz"',
    'ramdisk = "/usr/lib/xen/boot/vtpm-stubdom-initrd.gz"',
    'extra = "console=hvc0 quiet"',
    "memory = 128",
    'disk = ["file:/var/lib/xen/vtpm/web1.img,hda,w"]',
    `vtpm = ["backend=vtpmmgr,uuid=${VTPM_UUID}"]`,
    "",
  ].join("\n"),
};

async function main(argv: string[]): Promise<void> {
  const outIdx = argv.indexOf("--out");
  const out = outIdx >= 0 ? argv[outIdx + 1] : path.join(repoRoot(), "bench", "results", "xen-lab.json");
  const keep = argv.includes("--keep");
  const stateDir = path.join(repoRoot(), "lab", "state", "xen-measure");
  const result: Record<string, unknown> = { measuredAt: new Date().toISOString() };

  if (argv.includes("--cold")) {
    // A truly cold build: an empty cache (debootstrap from the mirror included), then removed.
    const cold = mkdtempSync(path.join(os.tmpdir(), "tvd-xen-cold-"));
    const tc = Date.now();
    try {
      await buildRootfs({ ...process.env, PULUMI_TVD_CACHE: cold });
      result.rootfsColdSec = (Date.now() - tc) / 1000;
    } finally {
      rmSync(cold, { recursive: true, force: true });
    }
  }
  const t0 = Date.now();
  const buildDir = await buildRootfs();
  result.buildDir = buildDir;
  result.rootfsBuildThisRunSec = (Date.now() - t0) / 1000;
  const recipe = readFileSync(path.join(buildDir, "recipe"), "utf8");
  result.recipe = recipe.trim().split("\n");

  const t1 = Date.now();
  await buildRootfs();
  result.rootfsWarmSec = (Date.now() - t1) / 1000;

  // A fresh boot: stop a host left over by an earlier --keep.
  await stopXenHost(path.join(stateDir, "xen-m"));
  let host: XenHostRecord;
  try {
    host = await bootXenHost({ name: "xen-m", index: 0, stateDir, port: 2391, buildDir });
  } catch (err) {
    result.bootError = (err as Error).message;
    write(out, result);
    throw err;
  }
  result.bootToSshAndXlInfoSec = host.bootSeconds;
  result.qemuAfterBoot = qemuMemory(host.pid);
  result.qemuIdleCpuPercent = await cpuPercent(host.pid, 20000);
  result.inventoryEntry = { ...host, dir: undefined, pid: undefined, buildDir: undefined };

  const s = await xenSession(host);
  const sh = async (script: string, timeoutSec = 120) => {
    const started = Date.now();
    const r = await s.run(["sh", "-c", script], { timeoutSec });
    return {
      script,
      exitCode: r.exitCode,
      stdout: r.stdout,
      stderr: r.stderr,
      sec: (Date.now() - started) / 1000,
    };
  };
  const info = await sh("xl info");
  const field = (k: string) => new RegExp(`^${k}\\s*: (.*)$`, "m").exec(info.stdout)?.[1];
  result.xlInfo = {
    xen_version: field("xen_version"),
    total_memory: field("total_memory"),
    free_memory: field("free_memory"),
    nr_cpus: field("nr_cpus"),
    xen_commandline: field("xen_commandline"),
    full: info.stdout,
  };
  result.dom0 = await sh(
    "uname -r; cat /proc/xen/capabilities; hostname; systemctl is-active xenstored xenconsoled ssh tvd-vtpm-backend; free -m | sed -n 2p",
  );

  const cfgs = Object.entries(standInConfigs)
    .map(([f, c]) => `cat > /root/${f} <<'EOF'\n${c}EOF`)
    .join("\n");
  await sh(
    `${cfgs}\nmkdir -p /var/lib/xen/vtpm && dd if=/dev/zero of=/var/lib/xen/vtpm/mgr.img bs=1M count=16 status=none && dd if=/dev/zero of=/var/lib/xen/vtpm/web1.img bs=1M count=8 status=none`,
  );
  const steps: Record<string, unknown> = {};
  steps.createManager = await sh("xl create /root/vtpmmgr.cfg", 300);
  await new Promise((r) => setTimeout(r, 20000));
  steps.managerConsole = await sh("cat /var/log/xen/console/guest-vtpmmgr.log");
  steps.createVtpm = await sh("xl create /root/web1-vtpm.cfg", 300);
  await new Promise((r) => setTimeout(r, 20000));
  steps.vtpmConsole = await sh("cat /var/log/xen/console/guest-web1-vtpm.log");
  // A guest as the provider writes it: Debian's kernel by kernel line, root on a qcow2 overlay.
  steps.createGuest = await sh(
    `qemu-img create -q -f qcow2 -F raw -b /var/lib/xen/images/debian-base.raw /var/lib/xen/images/web1.qcow2 && cat > /root/web1.cfg <<'EOF'\n${guestConfig}EOF\nxl create /root/web1.cfg`,
    300,
  );
  await new Promise((r) => setTimeout(r, 20000));
  steps.guestConsole = await sh("tail -n 3 /var/log/xen/console/guest-web1.log");
  steps.guestBlockList = await sh("xl block-list web1");
  steps.list = await sh("xl list");
  steps.vtpmList = await sh("xl vtpm-list web1-vtpm");
  steps.listLong = await sh("xl list -l web1-vtpm");
  steps.xenstoreBackend = await sh(
    "mgr=$(xl domid vtpmmgr); fe=$(xl domid web1-vtpm); xenstore-ls -f /local/domain/$mgr/backend/vtpm; xenstore-ls -f /local/domain/$fe/device/vtpm",
  );
  steps.backendLoopJournal = await sh("journalctl -u tvd-vtpm-backend --no-pager | tail -n 5");
  steps.qemuWithDomains = qemuMemory(host.pid);
  steps.destroyGuest = await sh("xl destroy web1");
  // The same vTPM with the stand-in backend handshake stopped: what real xl says without it.
  steps.destroyVtpm = await sh("xl destroy web1-vtpm");
  steps.createVtpmNoBackendLoop = await sh(
    "systemctl stop tvd-vtpm-backend; xl create /root/web1-vtpm.cfg; rc=$?; systemctl start tvd-vtpm-backend; exit $rc",
    300,
  );
  steps.shutdownManager = await sh("timeout 90 xl shutdown vtpmmgr; echo rc=$?; sleep 5; xl list", 200);
  steps.memory64 = await sh(
    "sed -e 's/^name = .*/name = \"m64\"/' -e 's/^memory = .*/memory = 64/' -e '/^uuid/d' -e '/^disk/d' /root/vtpmmgr.cfg > /root/m64.cfg; xl create /root/m64.cfg; rc=$?; xl destroy m64 2>/dev/null; exit $rc",
    300,
  );
  steps.memory96 = await sh(
    "sed -e 's/^name = .*/name = \"m96\"/' -e 's/^memory = .*/memory = 96/' -e '/^uuid/d' -e '/^disk/d' /root/vtpmmgr.cfg > /root/m96.cfg; xl create /root/m96.cfg; rc=$?; sleep 25; cat /var/log/xen/console/guest-m96.log | tail -n 3; xl list m96; xl destroy m96; exit $rc",
    300,
  );
  steps.destroyManager = await sh("xl destroy vtpmmgr; rc=$?; xl list; exit $rc", 120);
  result.xl = steps;
  // The conformance suite's wall time on real Xen (it starts from a host with only Domain-0).
  const tc = Date.now();
  const observations = await runScenarios(s);
  result.conformanceSuite = { scenarios: observations.length, sec: (Date.now() - tc) / 1000 };
  result.qemuAfterSuite = qemuMemory(host.pid);
  await closeAllSessions();
  if (!keep) {
    await stopXenHost(host.dir);
    result.stopped = true;
  }
  write(out, result);
  console.log(`wrote ${out}`);
}

/** CPU use of a process over a window, in percent of one core (utime + stime, 100 Hz ticks). */
async function cpuPercent(pid: number, ms: number): Promise<number> {
  const ticks = () => {
    const st = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]);
  };
  const a = ticks();
  await new Promise((r) => setTimeout(r, ms));
  return Math.round(((ticks() - a) / 100 / (ms / 1000)) * 100);
}

function write(out: string, result: Record<string, unknown>): void {
  if (!existsSync(path.dirname(out))) mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: Error) => {
    console.error(`measure: ${err.message}`);
    process.exit(1);
  });
}
