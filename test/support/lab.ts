/** A private lab for one test file: its own state dir and ports, torn down afterwards. */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { labDown, labHosts, labUp, type LabOptions } from "../../lab/lab";
import { SEEDED_IMAGES, type LabHostRecord } from "../../lab/host";
import { connectionSchema } from "../../provider/transport/connection";
import { closeAllSessions, sessionFor, type ExecResult, type SshSession } from "../../provider/transport/ssh";

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/** A run of `count` free ports, so parallel test files and a running demo lab never collide. */
export async function freePortRange(count: number): Promise<number> {
  for (;;) {
    const first = 20000 + Math.floor(Math.random() * 20000);
    const checks = await Promise.all(Array.from({ length: count }, (_, i) => portFree(first + i)));
    if (checks.every(Boolean)) return first;
  }
}

/** What a test needs of one lab host's inventory entry (either lab's). */
export interface HostEntry {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly privateKeyPath: string;
  readonly hostKeyFingerprint: string;
}

/** SSH access to the hosts of a running lab, the local one or the real-Xen one. */
export interface LabAccess<H extends HostEntry = HostEntry> {
  readonly hosts: H[];
  host(name: string): H;
  /** The host's `connection` input, as a program or a lifecycle gets it. */
  connection(name: string): {
    host: string;
    port: number;
    user: string;
    privateKey: string;
    hostKeyFingerprint: string;
  };
  session(name: string): Promise<SshSession>;
  /** Runs a shell script on a host over SSH; positional args are passed as $1... */
  sh(name: string, script: string, ...args: string[]): Promise<ExecResult>;
  xl(name: string, ...args: string[]): Promise<ExecResult>;
  /** Runs a script that must succeed; its stdout. */
  check(name: string, script: string, ...args: string[]): Promise<string>;
  /** The domains `xl list -l` shows, by name and sorted, Domain-0 left out. */
  domainNames(name: string): Promise<string[]>;
  /** The files in the provider's archive (vTPM images kept on delete), timestamps left out, sorted. */
  archivedFiles(name: string): Promise<string[]>;
  /** Waits until a domain's console log contains `text` (a manager getting ready, say). */
  waitForConsole(name: string, domain: string, text: string, timeoutMs?: number): Promise<void>;
  /** Writes a file on a host (through stdin, so content needs no quoting). */
  writeFile(name: string, file: string, content: string | Buffer): Promise<void>;
}

export interface TestLab extends LabAccess<LabHostRecord> {
  readonly stateDir: string;
  /**
   * Three pings 0.2 s apart from inside a guest's stand-in network namespace on its host; true when
   * one is answered (a first packet may be lost while a port just moved is learned; none of three
   * passes a held port).
   */
  guestPings(name: string, domain: string, to: string): Promise<boolean>;
  stop(): Promise<void>;
}

export function labAccess<H extends HostEntry>(hosts: H[]): LabAccess<H> {
  const host = (name: string) => {
    const h = hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no lab host ${name}`);
    return h;
  };
  const connection = (name: string) => {
    const h = host(name);
    return {
      host: h.host,
      port: h.port,
      user: h.user,
      privateKey: readFileSync(h.privateKeyPath, "utf8"),
      hostKeyFingerprint: h.hostKeyFingerprint,
    };
  };
  const session = (name: string) => sessionFor(connectionSchema.parse(connection(name)));
  const sh = async (name: string, script: string, ...args: string[]) =>
    (await session(name)).run(["sh", "-c", script, "sh", ...args], { timeoutSec: 600 });
  const xl = async (name: string, ...args: string[]) =>
    (await session(name)).run(["xl", ...args], { timeoutSec: 600 });
  return {
    hosts,
    host,
    connection,
    session,
    sh,
    xl,
    async check(name, script, ...args) {
      const r = await sh(name, script, ...args);
      if (r.exitCode !== 0) throw new Error(`${script} exited ${r.exitCode} on ${name}: ${r.stderr}`);
      return r.stdout;
    },
    async domainNames(name) {
      const list = JSON.parse((await xl(name, "list", "-l")).stdout || "[]") as Array<{
        config: { c_info: { name: string } };
      }>;
      return list
        .map((d) => d.config.c_info.name)
        .filter((n) => n !== "Domain-0")
        .sort();
    },
    async waitForConsole(name, domain, text, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const log = await sh(name, 'cat "/var/log/xen/console/guest-$1.log" 2>/dev/null', domain);
        if (log.stdout.includes(text)) return;
        if (Date.now() > deadline)
          throw new Error(`${domain} on ${name} never printed ${JSON.stringify(text)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async archivedFiles(name) {
      const r = await sh(name, "ls /var/lib/xen/pulumi-tvd/archive 2>/dev/null");
      return r.stdout
        .split("\n")
        .filter(Boolean)
        .map((f) => f.replace(/\.\d{8}T\d{6}Z$/, ""))
        .sort();
    },
    async writeFile(name, file, content) {
      const r = await (
        await session(name)
      ).run(["sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1"', "sh", file], {
        stdin: content,
      });
      if (r.exitCode !== 0) throw new Error(`writing ${file} on ${name}: ${r.stderr}`);
    },
  };
}

export async function startTestLab(opts: Omit<LabOptions, "firstPort">): Promise<TestLab> {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), "tvd-lab-"));
  const firstPort = await freePortRange(opts.hosts);
  await labUp(stateDir, { managerReadyDelaySec: 0.3, shutdownAckTimeoutSec: 1, ...opts, firstPort });
  const access = labAccess(labHosts(stateDir));
  return {
    ...access,
    stateDir,
    async guestPings(name, domain, to) {
      const script = 'nsenter -t "$(cat "/var/lib/tvd-lab/netns/$1.pid")" -n ping -c3 -i0.2 -W2 "$2"';
      return (await access.sh(name, script, domain, to)).exitCode === 0;
    },
    async stop() {
      await closeAllSessions();
      await labDown(stateDir);
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** What `ls -A /var/lib/xen/images` prints on a host no stack has touched: the lab's own templates. */
export const SEEDED_IMAGES_LISTING = SEEDED_IMAGES.map((f) => `${path.basename(f)}\n`)
  .sort()
  .join("");

/** Domain configs as the Xen docs write them. */
export const cfg = {
  manager: (name = "vtpmmgr", image = "/var/lib/xen/vtpm/mgr.img") =>
    `name="${name}"\nkernel="/usr/lib/xen/boot/vtpmmgr-stubdom.gz"\nmemory=16\ndisk=["file:${image},hda,w"]\niomem=["fed40,5"]\n`,
  vtpm: (name: string, uuid: string, opts: { backend?: string; image?: string; extra?: string } = {}) =>
    `name="${name}"\nkernel="/usr/lib/xen/boot/vtpm-stubdom.gz"\nmemory=8\ndisk=["file:${opts.image ?? `/var/lib/xen/vtpm/${name}.img`},hda,w"]\nvtpm=["backend=${opts.backend ?? "vtpmmgr"},uuid=${uuid}"]\n` +
    (opts.extra ? `extra="${opts.extra}"\n` : ""),
  guest: (name: string, opts: { vtpm?: string; memory?: number; disk?: string } = {}) =>
    `name="${name}"\nkernel="/usr/lib/xen/boot/vmlinuz"\nramdisk="/usr/lib/xen/boot/initrd.img"\nmemory=${opts.memory ?? 128}\nvcpus=1\n` +
    `disk=["format=raw, vdev=xvda, access=rw, target=${opts.disk ?? "/var/lib/xen/images/debian-base.raw"}"]\n` +
    (opts.vtpm ? `vtpm=["backend=${opts.vtpm}"]\n` : ""),
};
