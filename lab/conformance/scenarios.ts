/**
 * The conformance scenarios: one set of xl interactions, run the same way against the local
 * lab's emulator and against real Xen, whose observations are compared field by field. Pure:
 * the scenarios are data, and normalizing and comparing observations are functions.
 */

/** The stand-in stub-domain configs real Xen can run (Debian's kernel + a busybox initrd). */
const MANAGER_CFG = [
  'name = "vtpmmgr"',
  'kernel = "/usr/lib/xen/boot/vtpmmgr-stubdom.gz"',
  'ramdisk = "/usr/lib/xen/boot/vtpmmgr-stubdom-initrd.gz"',
  'extra = "console=hvc0 quiet"',
  "memory = 128",
  'disk = ["file:/var/lib/xen/vtpm/conf-mgr.img,hda,w"]',
].join("\n");

const UUID = "ac0a5b9e-cbe2-4c07-b43b-1d69e46fb839";

function vtpmCfg(spec: string): string {
  return [
    'name = "conf-vtpm"',
    'kernel = "/usr/lib/xen/boot/vtpm-stubdom.gz"',
    'ramdisk = "/usr/lib/xen/boot/vtpm-stubdom-initrd.gz"',
    'extra = "console=hvc0 quiet"',
    "memory = 128",
    'disk = ["file:/var/lib/xen/vtpm/conf-vtpm.img,hda,w"]',
    `vtpm = ["${spec}"]`,
  ].join("\n");
}

/** A guest as pulumi-tvd's Guest renders it: Debian's kernel from dom0, root on its overlay. */
function guestCfg(overlay: string): string {
  return [
    'name = "conf-guest"',
    "memory = 128",
    "vcpus = 1",
    'kernel = "/usr/lib/xen/boot/vmlinuz"',
    'ramdisk = "/usr/lib/xen/boot/initrd.img"',
    'cmdline = "root=/dev/xvda ro console=hvc0"',
    `disk = ["format=qcow2, vdev=xvda, access=rw, target=${overlay}"]`,
    'vtpm = ["backend=conf-vtpm"]',
    "",
  ].join("\n");
}

export interface Scenario {
  readonly id: string;
  /** What real xl is expected to do, in words (the report's first column). */
  readonly about: string;
  /** Config files written before the command, by path. */
  readonly files?: Readonly<Record<string, string>>;
  /** The command under test. */
  readonly argv: readonly string[];
  /** Extra read-only commands whose output is part of the observation. */
  readonly observe?: ReadonlyArray<readonly string[]>;
}

/**
 * Run in order on a host with no domains but Domain-0; later scenarios use the domains earlier
 * ones made, and the last ones clean up.
 */
export const SCENARIOS: readonly Scenario[] = [
  {
    id: "list-all",
    about: "xl list -l with no domain named, on a host running only Domain-0",
    argv: ["xl", "list"],
    observe: [["xl", "list", "-l"]],
  },
  {
    id: "missing-config",
    about: "a config file that does not exist",
    argv: ["xl", "create", "/etc/xen/conf-nope.cfg"],
  },
  {
    id: "syntax-error",
    about: "a config with a syntax error",
    files: { "/etc/xen/conf-syntax.cfg": 'name="x" memory=16\n' },
    argv: ["xl", "create", "/etc/xen/conf-syntax.cfg"],
  },
  {
    id: "vtpm-no-backend",
    about: "a vtpm spec without backend",
    files: { "/etc/xen/conf-vtpm.cfg": vtpmCfg(`uuid=${UUID}`) + "\n" },
    argv: ["xl", "create", "/etc/xen/conf-vtpm.cfg"],
  },
  {
    id: "vtpm-bad-uuid",
    about: "a vtpm spec with a malformed uuid",
    files: { "/etc/xen/conf-vtpm.cfg": vtpmCfg("backend=vtpmmgr,uuid=not-a-uuid") + "\n" },
    argv: ["xl", "create", "/etc/xen/conf-vtpm.cfg"],
  },
  {
    id: "vtpm-unknown-key",
    about: "a vtpm spec with a key xl does not know",
    files: { "/etc/xen/conf-vtpm.cfg": vtpmCfg("backend=vtpmmgr,colour=1") + "\n" },
    argv: ["xl", "create", "/etc/xen/conf-vtpm.cfg"],
  },
  {
    id: "missing-kernel",
    about: "a kernel that does not exist",
    files: {
      "/etc/xen/conf-nokernel.cfg": 'name = "conf-nokernel"\nkernel = "/root/missing-kernel"\nmemory = 128\n',
    },
    argv: ["xl", "create", "/etc/xen/conf-nokernel.cfg"],
  },
  {
    id: "vtpm-backend-missing",
    about: "a vTPM whose backend domain does not exist (start order: the manager must run first)",
    files: { "/etc/xen/conf-vtpm.cfg": vtpmCfg(`backend=vtpmmgr,uuid=${UUID}`) + "\n" },
    argv: ["xl", "create", "/etc/xen/conf-vtpm.cfg"],
    observe: [["xl", "domid", "conf-vtpm"]],
  },
  {
    id: "manager-create",
    about: "the vTPM manager stand-in starts",
    files: { "/etc/xen/conf-mgr.cfg": MANAGER_CFG + "\n" },
    argv: ["xl", "create", "/etc/xen/conf-mgr.cfg"],
    observe: [["xl", "list", "-l", "vtpmmgr"]],
  },
  {
    id: "duplicate-name",
    about: "a second domain with a running domain's name",
    argv: ["xl", "create", "/etc/xen/conf-mgr.cfg"],
  },
  {
    id: "vtpm-create",
    about: "a vTPM with backend and uuid starts, and shows its device",
    files: { "/etc/xen/conf-vtpm.cfg": vtpmCfg(`backend=vtpmmgr,uuid=${UUID}`) + "\n" },
    argv: ["xl", "create", "/etc/xen/conf-vtpm.cfg"],
    observe: [
      ["xl", "list", "-l", "conf-vtpm"],
      ["xl", "vtpm-list", "conf-vtpm"],
    ],
  },
  {
    id: "guest-overlay-missing",
    about: "a guest whose qcow2 overlay does not exist",
    files: { "/etc/xen/conf-guest.cfg": guestCfg("/var/lib/xen/images/conf-missing.qcow2") },
    argv: ["xl", "create", "/etc/xen/conf-guest.cfg"],
    observe: [["xl", "domid", "conf-guest"]],
  },
  {
    id: "guest-qcow2-create",
    about: "a guest on a qcow2 overlay of a raw base, attached to its vTPM, starts",
    files: { "/etc/xen/conf-guest.cfg": guestCfg("/var/lib/xen/images/conf-guest.qcow2") },
    argv: ["xl", "create", "/etc/xen/conf-guest.cfg"],
    observe: [
      ["xl", "list", "-l", "conf-guest"],
      ["xl", "vtpm-list", "conf-guest"],
    ],
  },
  {
    id: "vtpm-backend-silent",
    about: "a vtpm device whose backend domain runs but serves no vTPM (a guest): libxl waits 10 s",
    files: {
      "/etc/xen/conf-vtpm2.cfg":
        vtpmCfg(`backend=conf-guest,uuid=${UUID}`).replace(/conf-vtpm/g, "conf-vtpm2") + "\n",
    },
    argv: ["xl", "create", "/etc/xen/conf-vtpm2.cfg"],
    observe: [["xl", "domid", "conf-vtpm2"]],
  },
  {
    id: "guest-destroy",
    about: "destroying a guest attached to its vTPM",
    argv: ["xl", "destroy", "conf-guest"],
    observe: [["xl", "domid", "conf-guest"]],
  },
  {
    id: "destroy-unknown",
    about: "destroying a domain that does not exist",
    argv: ["xl", "destroy", "conf-nosuch"],
  },
  {
    id: "domid-unknown",
    about: "the domid of a domain that does not exist",
    argv: ["xl", "domid", "conf-nosuch"],
  },
  {
    id: "manager-destroy-busy",
    about: "destroying the manager while its vTPM runs (destroy order: vTPMs first)",
    argv: ["xl", "destroy", "vtpmmgr"],
    observe: [["xl", "domid", "vtpmmgr"]],
  },
  {
    id: "vtpm-destroy",
    about: "destroying the vTPM after its manager",
    argv: ["xl", "destroy", "conf-vtpm"],
    observe: [["xl", "domid", "conf-vtpm"]],
  },
];

/** Files every scenario run needs on the host first: the stub domains' images. */
export const PREPARE = [
  "set -e",
  "mkdir -p /var/lib/xen/vtpm",
  "rm -f /etc/xen/conf-*.cfg",
  "dd if=/dev/zero of=/var/lib/xen/vtpm/conf-mgr.img bs=1M count=16 status=none",
  "dd if=/dev/zero of=/var/lib/xen/vtpm/conf-vtpm.img bs=1M count=8 status=none",
  "dd if=/dev/zero of=/var/lib/xen/vtpm/conf-vtpm2.img bs=1M count=8 status=none",
  "mkdir -p /var/lib/xen/images",
  "rm -f /var/lib/xen/images/conf-guest.qcow2 /var/lib/xen/images/conf-missing.qcow2",
  "qemu-img create -q -f qcow2 -F raw -b /var/lib/xen/images/debian-base.raw /var/lib/xen/images/conf-guest.qcow2",
].join("\n");

/** What one scenario showed: exit code, stderr, and the fields the provider reads. */
export interface Observation {
  readonly id: string;
  readonly exitCode: number | null;
  readonly stderr: string[];
  readonly observed: Record<string, unknown>;
}

/**
 * Takes out what differs from run to run and not between implementations: domain ids, and the
 * order-free parts of xl's output.
 */
export function normalizeStderr(text: string): string[] {
  const lines = text
    .split("\n")
    .map((l) =>
      l
        .replace(/Domain \d+:/g, "Domain <id>:")
        .replace(/domid=\d+/g, "domid=<id>")
        .replace(/\/local\/domain\/\d+\/backend\/(\w+)\/\d+\//g, "/local/domain/<id>/backend/$1/<id>/")
        .trimEnd(),
    )
    .filter((l) => l.length > 0);
  // After a failed create, libxl's cleanup races the domain's own teardown: on Xen 4.17.5 the
  // same scenario printed either "xc_domain_pause failed" + "unable to get domain type" or
  // "Non-existant domain", then the same two lines. One outcome, compared as the second form.
  const pause = lines.findIndex((l) =>
    l.includes("destroy_domid_pci_done: Domain <id>:xc_domain_pause failed"),
  );
  if (
    pause >= 0 &&
    lines[pause + 1]?.includes("libxl__domain_type: unable to get domain type for domid=<id>")
  ) {
    lines.splice(
      pause,
      2,
      "libxl: error: libxl_domain.c:1183:libxl__destroy_domid: Domain <id>:Non-existant domain",
    );
  }
  return lines;
}

/** libxl makes up a UUID for a vtpm spec that names none (a guest's); only the fact is compared. */
function stableUuid(uuid: unknown): unknown {
  return typeof uuid === "string" && uuid !== UUID ? "<generated>" : uuid;
}

/** The fields of `xl list -l` pulumi-tvd reads (provider/dom0/inspect.ts), and vtpm-list's rows. */
export function projectObservation(argv: readonly string[], stdout: string): unknown {
  if (argv[1] === "list" && argv[2] === "-l") {
    const list = JSON.parse(stdout || "[]") as Array<{ config: Record<string, unknown> }>;
    return list.map((d) => {
      const c = d.config as {
        c_info?: { name?: string; type?: string };
        b_info?: { max_memkb?: number };
        disks?: Array<Record<string, unknown>>;
        vtpms?: Array<Record<string, unknown>>;
      };
      return {
        name: c.c_info?.name,
        type: c.c_info?.type,
        // Domain-0's memory is the host's dom0_mem, which differs between the labs by design.
        maxMemKb: c.c_info?.name === "Domain-0" ? "<dom0_mem>" : c.b_info?.max_memkb,
        disks: (c.disks ?? []).map((x) => ({
          pdev_path: x.pdev_path,
          vdev: x.vdev,
          format: x.format,
          readwrite: x.readwrite,
        })),
        vtpms: (c.vtpms ?? []).map((v) => ({
          backend_domname: v.backend_domname,
          devid: v.devid,
          uuid: stableUuid(v.uuid),
        })),
      };
    });
  }
  if (argv[1] === "vtpm-list") {
    const [header, ...rows] = stdout.split("\n").filter(Boolean);
    return {
      header: header.trimEnd().split(/\s+/),
      rows: rows.map((r) => {
        const f = r.trim().split(/\s+/);
        return { idx: f[0], uuid: stableUuid(f[2]), handle: f[3], state: f[4], evtch: f[5], ringRef: f[6] };
      }),
    };
  }
  return stdout;
}

/** One field where two labs disagree. */
export interface Difference {
  readonly scenario: string;
  readonly field: string;
  readonly emulator: unknown;
  readonly xen: unknown;
}

/** Every field of every scenario where the emulator and real Xen disagree. */
export function compareObservations(
  emulator: readonly Observation[],
  xen: readonly Observation[],
): Difference[] {
  const out: Difference[] = [];
  // A scenario only one side ran (a new one not yet recorded on real Xen, say) differs entirely.
  const missing = (id: string): Observation => ({ id, exitCode: null, stderr: [], observed: {} });
  const ids = [...new Set([...xen, ...emulator].map((o) => o.id))];
  for (const id of ids) {
    const x = xen.find((o) => o.id === id) ?? missing(id);
    const e = emulator.find((o) => o.id === id);
    const fields: Array<[string, unknown, unknown]> = [
      ["exitCode", e?.exitCode, x.exitCode],
      ["stderr", e?.stderr, x.stderr],
      ...Object.keys({ ...x.observed, ...e?.observed }).map(
        (k) => [k, e?.observed[k], x.observed[k]] as [string, unknown, unknown],
      ),
    ];
    for (const [field, a, b] of fields) {
      if (JSON.stringify(a) !== JSON.stringify(b)) out.push({ scenario: x.id, field, emulator: a, xen: b });
    }
  }
  return out;
}
