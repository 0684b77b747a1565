/**
 * Each running vtpm-stubdom domain of the lab is a real software TPM (swtpm + libtpms) whose
 * whole state lives inside that vTPM's disk image, as vtpm-stubdom keeps it on its disk:
 * removing or recreating the image really resets the TPM.
 *
 * swtpm's file backend rewrites a regular file to the size of its state, so the image is
 * attached to a loop device first: on a block device swtpm keeps a constant size, and the image
 * keeps the size `dd` gave it.
 */
import { spawnSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readlinkSync,
  readSync,
  rmSync,
  writeSync,
} from "node:fs";
import * as path from "node:path";
import { alive } from "../proc";
import type { SwtpmProcess } from "./state";
import { XlError } from "./specs";

function run(argv: string[]): string {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: "utf8" });
  if (r.status !== 0) {
    throw new XlError([`lab: ${argv.join(" ")} failed: ${(r.stderr || r.error?.message || "").trim()}`], 1);
  }
  return r.stdout.trim();
}

/** What swtpm's state blob takes at most at the start of an image (TPM 1.2 state is ~ 10 KiB). */
const STATE_HEAD = 4096;

/** No TPM state yet: a new (zeroed) or wiped image. swtpm's blob starts with a magic there. */
function imageIsBlank(image: string): boolean {
  const fd = openSync(image, "r");
  try {
    const head = Buffer.alloc(STATE_HEAD);
    const n = readSync(fd, head, 0, STATE_HEAD, 0);
    return head.subarray(0, n).every((b) => b === 0);
  } finally {
    closeSync(fd);
  }
}

/** Makes the image blank again, so that the next start provisions it afresh. */
function blankImage(image: string): void {
  const fd = openSync(image, "r+");
  try {
    writeSync(fd, Buffer.alloc(STATE_HEAD), 0, STATE_HEAD, 0);
  } finally {
    closeSync(fd);
  }
}

export function startSwtpm(o: { name: string; image: string; tpm2: boolean; runDir: string }): SwtpmProcess {
  const fresh = imageIsBlank(o.image);
  rmSync(o.runDir, { recursive: true, force: true });
  mkdirSync(o.runDir, { recursive: true });
  const loop = run(["losetup", "--find", "--show", o.image]);
  const server = path.join(o.runDir, "tpm.sock");
  // tpm2-tools' swtpm TCTI expects the control socket at "<server>.ctrl".
  const ctrl = `${server}.ctrl`;
  const pidFile = path.join(o.runDir, "swtpm.pid");
  try {
    run([
      "swtpm",
      "socket",
      ...(o.tpm2 ? ["--tpm2"] : []),
      "--tpmstate",
      `backend-uri=file://${loop}`,
      "--server",
      `type=unixio,path=${server}`,
      "--ctrl",
      `type=unixio,path=${ctrl}`,
      // Powered on and started, as vtpm-stubdom's TPM is when its domain runs.
      "--flags",
      "not-need-init,startup-clear",
      "--daemon",
      "--pid",
      `file=${pidFile}`,
      "--log",
      `file=${path.join(o.runDir, "swtpm.log")},level=1`,
    ]);
  } catch (e) {
    spawnSync("losetup", ["-d", loop]);
    throw e;
  }
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  const proc: SwtpmProcess = { pid, server, ctrl, tpm2: o.tpm2, loop };
  // Xen's vtpm-stubdom (TPM 1.2) is enabled, activated and has an EK from its first start; a
  // TPM 2.0 derives its EK from its seed and needs nothing.
  if (fresh && !o.tpm2) {
    const r = spawnSync(process.execPath, [path.join(__dirname, "tpm12.js"), "provision", server, ctrl], {
      encoding: "utf8",
      timeout: 60_000,
    });
    if (r.status !== 0) {
      stopSwtpm(proc);
      // Half-provisioned state would never count as fresh again.
      blankImage(o.image);
      throw new XlError(
        [
          `lab: cannot give vTPM ${o.name} its endorsement key: ${(r.stderr || r.error?.message || "").trim()}`,
        ],
        1,
      );
    }
  }
  return proc;
}

function isThisSwtpm(p: SwtpmProcess): boolean {
  try {
    // Lab hosts share the machine's pids: the same socket path on another host is another swtpm.
    if (readlinkSync(`/proc/${p.pid}/ns/mnt`) !== readlinkSync("/proc/self/ns/mnt")) return false;
    const argv = readFileSync(`/proc/${p.pid}/cmdline`, "utf8").split("\0");
    return argv.some((a) => a.includes(`path=${p.server}`));
  } catch {
    return false;
  }
}

/** Stops the TPM cleanly (its state is flushed to the image) and releases the loop device. */
export function stopSwtpm(p: SwtpmProcess): void {
  // A swtpm killed out of band (a test does) leaves its pid to be reused, by the machine's next
  // process: only a process serving this vTPM's socket is this swtpm, and only it is killed.
  if (alive(p.pid) && isThisSwtpm(p)) {
    if (existsSync(p.ctrl)) spawnSync("swtpm_ioctl", ["--unix", p.ctrl, "-s"], { timeout: 5000 });
    for (let i = 0; i < 100 && alive(p.pid); i++)
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    if (alive(p.pid)) process.kill(p.pid, "SIGKILL");
  }
  if (p.loop) spawnSync("losetup", ["-d", p.loop]);
}
