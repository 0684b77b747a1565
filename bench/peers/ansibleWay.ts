/**
 * The work done the way an ops team writes it in Ansible (Debian's ansible-core 2.14): an inventory
 * of the lab hosts with their SSH port, key and pinned known_hosts; a playbook of `command ...
 * creates=`, `copy: content=` and `xl create` guarded by what `xl list` shows; read back with
 * `--check --diff` (the same playbook, as ops teams run it for drift); a teardown playbook.
 * Run with Ansible's defaults, or with pipelining (ANSIBLE_PIPELINING=True).
 *
 * Facts are not gathered (no task needs them), which only makes Ansible faster. Modules are copied
 * by piping (see playbook()), as one channel, which is what sftp costs on a real dom0.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { run } from "../../lab/exec";
import { cpuMeter, type CpuFigures } from "../common";
import {
  GUEST_MEMORY_MIB,
  KERNEL,
  MANAGER,
  MANAGER_IMAGE_MIB,
  VTPM_IMAGE_MIB,
  expectedOn,
  type Placement,
} from "./workload";

const RUNNING = `
    - name: read the running domains
      command: xl list
      register: xl_list
      changed_when: false
      check_mode: false
    - name: note them
      set_fact:
        running: "{{ xl_list.stdout_lines[1:] | map('split') | map('first') | list }}"
`;

/** Per host: the manager, then per guest (host var `guests`) its vTPM and the guest. */
const SITE = `- hosts: dom0s
  gather_facts: false
  tasks:${RUNNING}
    - name: image directories
      file: path=/var/lib/xen/vtpm state=directory
    - name: vTPM manager image
      command: dd if=/dev/zero of=/var/lib/xen/vtpm/${MANAGER}.img bs=1M count=${MANAGER_IMAGE_MIB} creates=/var/lib/xen/vtpm/${MANAGER}.img
    - name: vTPM manager config
      copy:
        dest: /etc/xen/${MANAGER}.cfg
        content: |
          name="${MANAGER}"
          kernel="/usr/lib/xen/boot/vtpmmgr-stubdom.gz"
          memory=16
          disk=["file:/var/lib/xen/vtpm/${MANAGER}.img,hda,w"]
          iomem=["fed40,5"]
    - name: vTPM manager domain
      command: xl create /etc/xen/${MANAGER}.cfg
      when: "'${MANAGER}' not in running"
    - name: vTPM images
      command: dd if=/dev/zero of=/var/lib/xen/vtpm/{{ item }}-vtpm.img bs=1M count=${VTPM_IMAGE_MIB} creates=/var/lib/xen/vtpm/{{ item }}-vtpm.img
      loop: "{{ guests }}"
    - name: vTPM configs
      copy:
        dest: /etc/xen/{{ item }}-vtpm.cfg
        content: |
          name="{{ item }}-vtpm"
          kernel="/usr/lib/xen/boot/vtpm-stubdom.gz"
          memory=8
          disk=["file:/var/lib/xen/vtpm/{{ item }}-vtpm.img,hda,w"]
          vtpm=["backend=${MANAGER},uuid={{ (item + '-vtpm') | to_uuid }}"]
      loop: "{{ guests }}"
    - name: vTPM domains
      command: xl create /etc/xen/{{ item }}-vtpm.cfg
      when: item + '-vtpm' not in running
      loop: "{{ guests }}"
    - name: guest overlays
      command: qemu-img create -q -f qcow2 -F raw -b {{ base_image }} /var/lib/xen/images/{{ item }}.qcow2 creates=/var/lib/xen/images/{{ item }}.qcow2
      loop: "{{ guests }}"
    - name: guest configs
      copy:
        dest: /etc/xen/{{ item }}.cfg
        content: |
          name="{{ item }}"
          kernel="${KERNEL}"
          memory=${GUEST_MEMORY_MIB}
          disk=["format=qcow2, vdev=xvda, access=rw, target=/var/lib/xen/images/{{ item }}.qcow2"]
          vtpm=["backend={{ item }}-vtpm"]
      loop: "{{ guests }}"
    - name: guest domains
      command: xl create /etc/xen/{{ item }}.cfg
      when: item not in running
      loop: "{{ guests }}"
`;

const TEARDOWN = `- hosts: dom0s
  gather_facts: false
  tasks:${RUNNING}
    - name: stop the guests
      command: xl destroy {{ item }}
      when: item in running
      loop: "{{ guests }}"
    - name: stop the vTPMs
      command: xl destroy {{ item }}-vtpm
      when: item + '-vtpm' in running
      loop: "{{ guests }}"
    - name: stop the vTPM manager
      command: xl destroy ${MANAGER}
      when: "'${MANAGER}' in running"
    - name: remove the guest configs
      file: path=/etc/xen/{{ item }}.cfg state=absent
      loop: "{{ guests }}"
    - name: remove the guest overlays
      file: path=/var/lib/xen/images/{{ item }}.qcow2 state=absent
      loop: "{{ guests }}"
    - name: remove the vTPM configs
      file: path=/etc/xen/{{ item }}-vtpm.cfg state=absent
      loop: "{{ guests }}"
    - name: remove the vTPM images
      file: path=/var/lib/xen/vtpm/{{ item }}-vtpm.img state=absent
      loop: "{{ guests }}"
    - name: remove the vTPM manager's files
      file: path={{ item }} state=absent
      loop:
        - /etc/xen/${MANAGER}.cfg
        - /var/lib/xen/vtpm/${MANAGER}.img
`;

interface TaskResult {
  readonly changed?: boolean;
  readonly skipped?: boolean;
  readonly failed?: boolean;
  readonly stdout?: string;
  readonly results?: TaskResult[];
}

interface PlaybookJson {
  readonly plays: Array<{ tasks: Array<{ task: { name: string }; hosts: Record<string, TaskResult> }> }>;
  readonly stats: Record<
    string,
    { ok: number; changed: number; failures: number; unreachable: number; skipped: number }
  >;
}

export interface AnsibleRun {
  readonly sec: number;
  readonly cpu: CpuFigures;
  readonly tasksOk: number;
  readonly changed: number;
}

export class AnsibleWay {
  private readonly inventory: string;

  constructor(
    private readonly workDir: string,
    knownHostsFile: string,
    private readonly placements: readonly Placement[],
    baseImage: string,
    private readonly pipelining: boolean,
  ) {
    mkdirSync(workDir, { recursive: true });
    this.inventory = path.join(workDir, "inventory.json");
    const hosts = Object.fromEntries(
      placements.map((p) => [
        p.host.name,
        {
          ansible_host: p.host.host,
          ansible_port: p.host.port,
          ansible_user: p.host.user,
          ansible_ssh_private_key_file: p.host.privateKeyPath,
          guests: p.guests,
        },
      ]),
    );
    const vars = {
      ansible_ssh_common_args: `-o UserKnownHostsFile=${knownHostsFile}`,
      base_image: baseImage,
    };
    writeFileSync(this.inventory, JSON.stringify({ dom0s: { hosts, vars } }, null, 2));
    writeFileSync(path.join(workDir, "site.yml"), SITE);
    writeFileSync(path.join(workDir, "teardown.yml"), TEARDOWN);
  }

  private async playbook(
    file: string,
    extra: string[] = [],
  ): Promise<PlaybookJson & { sec: number; cpu: CpuFigures }> {
    const env = {
      ...process.env,
      ANSIBLE_STDOUT_CALLBACK: "json",
      ANSIBLE_PIPELINING: this.pipelining ? "True" : "False",
      // The lab's sshd runs every session through a ForceCommand and has no sftp subsystem, which
      // a Debian dom0 has. Ansible's default ("smart") would try sftp, then scp, on every module
      // it copies before falling back to piping it through dd; piped costs the one channel sftp
      // would, so Ansible is measured as on a real dom0.
      ANSIBLE_SSH_TRANSFER_METHOD: "piped",
      // Each way's own SSH control sockets: no master left by another run speeds this one up.
      ANSIBLE_SSH_CONTROL_PATH_DIR: path.join(this.workDir, "cp"),
      ANSIBLE_LOCAL_TEMP: path.join(this.workDir, "tmp"),
      ANSIBLE_NOCOLOR: "1",
    };
    const t = Date.now();
    const cpuSoFar = cpuMeter();
    const r = await run(["ansible-playbook", "-i", this.inventory, ...extra, file], {
      cwd: this.workDir,
      env,
      timeoutMs: 60 * 60_000,
    });
    const sec = (Date.now() - t) / 1000;
    const cpu = cpuSoFar();
    let parsed: PlaybookJson;
    try {
      parsed = JSON.parse(r.stdout.slice(r.stdout.indexOf("{"))) as PlaybookJson;
    } catch {
      throw new Error(
        `ansible-playbook ${file} exited ${r.code} without its JSON report: ${r.stderr.slice(0, 2000)}`,
      );
    }
    const bad = Object.entries(parsed.stats).filter(([, s]) => s.failures || s.unreachable);
    if (r.code !== 0 || bad.length)
      throw new Error(
        `ansible-playbook ${file} exited ${r.code}, failed on ${JSON.stringify(bad)}: ${failures(parsed)}`,
      );
    return { ...parsed, sec, cpu };
  }

  private summary(p: PlaybookJson & { sec: number; cpu: CpuFigures }): AnsibleRun {
    const stats = Object.values(p.stats);
    return {
      sec: p.sec,
      cpu: p.cpu,
      tasksOk: stats.reduce((n, s) => n + s.ok, 0),
      changed: stats.reduce((n, s) => n + s.changed, 0),
    };
  }

  async create(): Promise<AnsibleRun> {
    return this.summary(await this.playbook("site.yml"));
  }

  /**
   * `--check --diff` of the same playbook. Throws unless it changed nothing, `xl list` showed
   * every domain, and every image and config task found its files as created (per loop item).
   */
  async check(): Promise<AnsibleRun & { itemsVerified: number }> {
    const p = await this.playbook("site.yml", ["--check", "--diff"]);
    let verified = 0;
    for (const placement of this.placements) {
      const name = placement.host.name;
      const task = (t: string) => {
        const found = p.plays[0].tasks.find((x) => x.task.name === t)?.hosts[name];
        if (!found) throw new Error(`ansible --check: no result of "${t}" on ${name}`);
        return found.results ?? [found];
      };
      const domains = (task("read the running domains")[0].stdout ?? "")
        .split("\n")
        .slice(1)
        .map((l) => l.split(/\s+/)[0])
        .filter((d) => d && d !== "Domain-0")
        .sort();
      const want = expectedOn(placement);
      if (domains.join() !== want.domains.join())
        throw new Error(
          `ansible --check on ${name} read domains ${domains.join()}, expected ${want.domains.join()}`,
        );
      verified += domains.length;
      const perGuest = placement.guests.length;
      const asCreated = (t: string, n: number) => {
        const items = task(t).filter((x) => !x.skipped && !x.changed && !x.failed);
        if (items.length !== n)
          throw new Error(
            `ansible --check on ${name}: "${t}" found ${items.length} as created, expected ${n}`,
          );
        verified += n;
      };
      asCreated("vTPM manager image", 1);
      asCreated("vTPM manager config", 1);
      for (const t of ["vTPM images", "vTPM configs", "guest overlays", "guest configs"])
        asCreated(t, perGuest);
    }
    const s = this.summary(p);
    if (s.changed) throw new Error(`ansible --check would change ${s.changed} thing(s) right after create`);
    return { ...s, itemsVerified: verified };
  }

  async destroy(): Promise<AnsibleRun> {
    return this.summary(await this.playbook("teardown.yml"));
  }
}

function failures(p: PlaybookJson): string {
  const out: string[] = [];
  for (const t of p.plays.flatMap((x) => x.tasks))
    for (const [host, r] of Object.entries(t.hosts))
      for (const x of r.results ?? [r])
        if (x.failed) out.push(`${host} ${t.task.name}: ${JSON.stringify(x).slice(0, 300)}`);
  return out.slice(0, 5).join("\n");
}
