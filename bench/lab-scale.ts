/**
 * Lab scale benchmark: N hosts with G guests each, every guest with its own running vTPM
 * (a real swtpm), plus one vTPM manager per host. Measures how long `lab up` and populating
 * take, and the memory the lab uses. Writes bench/results/lab-scale.json.
 *
 *   npm run bench:lab -- [--hosts 3] [--guests 100]   (or: node build/bench/lab-scale.js ...)
 *
 * Uses its own state dir and ports; it tears everything down at the end.
 */
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { inHost } from "../lab/host";
import { labDown, labHosts, labUp } from "../lab/lab";
import { procKiB, runMain, writeResult } from "./common";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

/** Proportional set size (KiB) of a process: its fair share of shared pages. */
function pssKiB(pid: number): number {
  return procKiB(pid, "smaps_rollup", "Pss");
}

function processes(): Array<{ pid: number; comm: string; mntns: string }> {
  const out = [];
  for (const e of readdirSync("/proc")) {
    const pid = Number(e);
    if (!Number.isInteger(pid)) continue;
    try {
      out.push({
        pid,
        comm: readFileSync(`/proc/${pid}/comm`, "utf8").trim(),
        mntns: readlinkSync(`/proc/${pid}/ns/mnt`),
      });
    } catch {
      // gone
    }
  }
  return out;
}

function memAvailableMiB(): number {
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync("/proc/meminfo", "utf8"));
  return Math.round(Number(m![1]) / 1024);
}

/** One host's population, as one shell script run on the host: manager, then per guest a vTPM and the guest. */
const POPULATE = `
set -e
n=$1
mkdir -p /var/lib/xen/vtpm /var/lib/xen/images
dd if=/dev/zero of=/var/lib/xen/vtpm/mgr.img bs=16M count=1 conv=excl status=none
printf 'name="vtpmmgr"\\nkernel="/usr/lib/xen/boot/vtpmmgr-stubdom.gz"\\nmemory=16\\ndisk=["file:/var/lib/xen/vtpm/mgr.img,hda,w"]\\niomem=["fed40,5"]\\n' > /etc/xen/vtpmmgr.cfg
xl create /etc/xen/vtpmmgr.cfg 2>/dev/null
i=0
while [ $i -lt $n ]; do
  g=guest$i
  dd if=/dev/zero of=/var/lib/xen/vtpm/$g.img bs=8M count=1 conv=excl status=none
  printf 'name="%s-vtpm"\\nkernel="/usr/lib/xen/boot/vtpm-stubdom.gz"\\nmemory=8\\ndisk=["file:/var/lib/xen/vtpm/%s.img,hda,w"]\\nvtpm=["backend=vtpmmgr,uuid=%s"]\\n' $g $g $(uuidgen) > /etc/xen/$g-vtpm.cfg
  xl create /etc/xen/$g-vtpm.cfg 2>/dev/null
  qemu-img create -q -f qcow2 -F raw -b /var/lib/xen/images/debian-base.raw /var/lib/xen/images/$g.qcow2
  printf 'name="%s"\\nkernel="/usr/lib/xen/boot/vmlinuz"\\nmemory=128\\ndisk=["format=qcow2, vdev=xvda, access=rw, target=/var/lib/xen/images/%s.qcow2"]\\nvtpm=["backend=%s-vtpm"]\\n' $g $g $g > /etc/xen/$g.cfg
  xl create /etc/xen/$g.cfg 2>/dev/null
  i=$((i + 1))
done
`;

async function main(): Promise<void> {
  const hosts = arg("--hosts", 3);
  const guests = arg("--guests", 100);
  const stateDir = mkdtempSync(path.join(os.tmpdir(), "tvd-bench-lab-"));
  const availableBefore = memAvailableMiB();
  try {
    let t = Date.now();
    await labUp(stateDir, { hosts, firstPort: 24201, memoryMiB: 65536, diskMiB: 4096 });
    const labUpSec = (Date.now() - t) / 1000;
    const records = labHosts(stateDir);

    t = Date.now();
    await Promise.all(
      records.map(async (h) => {
        const r = await inHost(h, ["sh", "-c", POPULATE, "populate", String(guests)]);
        if (r.code !== 0) throw new Error(`populating ${h.name} failed: ${r.stderr}`);
      }),
    );
    const populateSec = (Date.now() - t) / 1000;

    const counts = await Promise.all(
      records.map(async (h) => {
        const list = await inHost(h, ["xl", "list"]);
        return list.stdout.trim().split("\n").length - 2; // header and Domain-0
      }),
    );
    const hostNs = new Set(records.map((h) => readlinkSync(`/proc/${h.holderPid}/ns/mnt`)));
    const procs = processes().filter((p) => hostNs.has(p.mntns));
    const swtpm = procs.filter((p) => p.comm === "swtpm");
    const swtpmPss = swtpm.reduce((s, p) => s + pssKiB(p.pid), 0);
    const labPss =
      procs.reduce((s, p) => s + pssKiB(p.pid), 0) + records.reduce((s, h) => s + pssKiB(h.forwarderPid), 0);
    const t2 = Date.now();
    await inHost(records[0], ["xl", "list", "-l"]);
    const listLongSec = (Date.now() - t2) / 1000;

    const result = {
      date: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        memoryMiB: Math.round(os.totalmem() / 2 ** 20),
        kernel: os.release(),
      },
      hosts,
      guestsPerHost: guests,
      domainsRunning: counts.reduce((a, b) => a + b, 0),
      swtpmProcesses: swtpm.length,
      labUpSec,
      populateSec,
      xlListLongSecAtScale: listLongSec,
      swtpmPssMiB: Math.round(swtpmPss / 1024),
      swtpmPssPerProcessKiB: swtpm.length ? Math.round(swtpmPss / swtpm.length) : 0,
      labProcessesPssMiB: Math.round(labPss / 1024),
      machineMemAvailableDropMiB: availableBefore - memAvailableMiB(),
    };
    t = Date.now();
    await labDown(stateDir);
    const withDown = { ...result, labDownSec: (Date.now() - t) / 1000 };
    console.log(JSON.stringify(withDown, null, 2));
    writeResult("lab-scale.json", withDown);
  } finally {
    await labDown(stateDir);
    rmSync(stateDir, { recursive: true, force: true });
  }
}

runMain(main);
