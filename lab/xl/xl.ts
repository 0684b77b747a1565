/**
 * The xl subcommands the provider uses, with xl's rules: unique names, memory accounting, start
 * order (a vtpm backend must exist and run; a vtpm-stubdom needs a running vtpmmgr), the
 * manager ignoring shutdown, and libxl's error texts and exit codes.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loadTree, remove as xsRemove, saveTree, write as xsWrite } from "../xenstore/store";
import { readDomainConfig } from "./config";
import {
  renderInfo,
  renderList,
  renderListLong,
  renderVtpmList,
  usedMemoryMiB,
  type VtpmRow,
} from "./render";
import { bootGuest, stopGuest } from "./guest";
import { missingBridge, plugVifs, unplugVifs } from "./network";
import { isPvGrub, pvGrubBoot } from "./pvgrub";
import { crashedDomainLog, isUuid, XlError, xlErrors } from "./specs";
import { startSwtpm, stopSwtpm } from "./swtpm";
import {
  type DomainRecord,
  type HostSettings,
  type HostState,
  LAB_DIR,
  LOG_DIR,
  loadSettings,
  loadState,
  saveState,
  type VtpmDevice,
} from "./state";

export interface XlOutput {
  stdout: string;
  stderr: string;
  exitCode: number;
}

function consoleLog(name: string, line: string): void {
  const dir = path.join(LOG_DIR, "console");
  mkdirSync(dir, { recursive: true });
  appendFileSync(path.join(dir, `guest-${name}.log`), line + "\n");
}

function xlLog(name: string, line: string): void {
  mkdirSync(LOG_DIR, { recursive: true });
  appendFileSync(path.join(LOG_DIR, `xl-${name}.log`), line + "\n");
}

/** xl's domain argument: all digits is a domid (not checked here), anything else a name. */
function resolve(state: HostState, arg: string): DomainRecord {
  if (/^\d+$/.test(arg)) {
    const d = state.domains.find((x) => x.domid === Number(arg));
    if (!d) throw xlErrors.noSuchDomid(Number(arg));
    return d;
  }
  const d = state.domains.find((x) => x.name === arg);
  if (!d) throw xlErrors.invalidDomain(arg);
  return d;
}

function byName(state: HostState, name: string): DomainRecord | undefined {
  return state.domains.find((d) => d.name === name);
}

/** The xenstore nodes libxl writes for a vtpm device between frontend and backend. */
function writeVtpmNodes(fe: DomainRecord, dev: VtpmDevice, state: number): void {
  const tree = loadTree();
  const fePath = `/local/domain/${fe.domid}/device/vtpm/${dev.devid}`;
  const bePath = `/local/domain/${dev.backendDomid}/backend/vtpm/${fe.domid}/${dev.devid}`;
  for (const [k, v] of Object.entries({
    backend: bePath,
    "backend-id": String(dev.backendDomid),
    state: String(state),
    handle: String(dev.devid),
  })) {
    xsWrite(tree, `${fePath}/${k}`, v);
  }
  const be = {
    frontend: fePath,
    "frontend-id": String(fe.domid),
    online: "1",
    state: String(state),
    handle: String(dev.devid),
    uuid: dev.uuid,
    resume: "False",
  };
  for (const [k, v] of Object.entries(be)) xsWrite(tree, `${bePath}/${k}`, v);
  saveTree(tree);
}

function removeDomainNodes(domid: number): void {
  const tree = loadTree();
  xsRemove(tree, `/local/domain/${domid}`);
  // Backend nodes other domains hold for this one.
  const domains = tree.children.local?.children.domain?.children ?? {};
  for (const be of Object.values(domains)) {
    delete be.children.backend?.children.vtpm?.children[String(domid)];
  }
  saveTree(tree);
}

/** Checks one vtpm device of a domain being created or attached, and resolves its backend. */
function vtpmDevice(
  state: HostState,
  domid: number,
  kind: DomainRecord["config"]["kind"],
  spec: { backend: string; uuid?: string },
  devid: number,
): VtpmDevice {
  const backend = byName(state, spec.backend);
  // A vtpm-stubdom talks to the manager; a guest's backend is its own vtpm-stubdom. The
  // backend's xenbus driver must be up, or libxl gives up after its timeout.
  const wanted = kind === "vtpm" ? "vtpmmgr" : "vtpm";
  if (!backend) throw xlErrors.vtpmBackendMissing(domid);
  if (backend.config.kind !== wanted) throw xlErrors.vtpmBackend(domid, backend.domid);
  // libxl makes up a UUID when the spec has none, as real xl does.
  return { devid, backendName: backend.name, backendDomid: backend.domid, uuid: spec.uuid ?? randomUUID() };
}

function create(settings: HostSettings, args: string[]): XlOutput {
  const file = args.find((a) => !a.startsWith("-"));
  if (!file) throw xlErrors.tooFewArgs("create", 1);
  const stderr: string[] = [];
  if (existsSync(file)) stderr.push(`Parsing config from ${file}`);
  try {
    const { config, vtpms } = readDomainConfig(settings, file);
    const state = loadState();
    // Xen hands out a domid before libxl finds any problem, and never reuses it at once.
    const domid = state.nextDomid++;
    const fail = (e: XlError): never => {
      saveState(state);
      throw e;
    };
    if (byName(state, config.name)) fail(xlErrors.duplicateName(domid, config.name));
    // libxl checks disks while setting defaults, before it loads the kernel.
    config.disks.forEach((disk, i) => {
      if (!existsSync(disk.pdev_path)) fail(xlErrors.missingDisk(domid, i, disk));
    });
    if (config.kernel && !existsSync(config.kernel)) fail(xlErrors.missingKernel(domid, config.kernel));
    if (config.memoryMiB > settings.totalMemoryMiB - usedMemoryMiB(settings, state.domains)) {
      fail(xlErrors.outOfMemory(domid));
    }
    let devices: VtpmDevice[] = [];
    try {
      devices = vtpms.map((spec, devid) => vtpmDevice(state, domid, config.kind, spec, devid));
    } catch (e) {
      fail(e as XlError);
    }
    if (config.kind === "vtpm" && !config.disks[0]) fail(xlErrors.stubdomWithoutDisk(domid));
    const noBridge = missingBridge(config.nics);
    if (noBridge !== undefined) fail(xlErrors.missingBridge(domid, noBridge));

    const record: DomainRecord = {
      domid,
      name: config.name,
      config,
      configFile: path.resolve(file),
      createdAt: Date.now(),
      vtpms: devices,
      ready: config.kind !== "vtpmmgr",
    };
    // pv-grub runs in the new domain before any kernel: it measures what it boots into the
    // guest's vTPM, or crashes the domain (on_crash: xl's monitor destroys it; create said 0).
    let kernelRuns = config.kind === "guest";
    if (config.kind === "guest" && isPvGrub(config.kernel)) {
      miniOsBanner(record);
      const vtpm = devices[0] && byName(state, devices[0].backendName);
      const outcome = pvGrubBoot(config, vtpm, (line) => consoleLog(config.name, line));
      if (outcome === "crashed") {
        saveState(state);
        xlLog(config.name, `Waiting for domain ${config.name} (domid ${domid}) to die [pid ${process.pid}]`);
        for (const line of crashedDomainLog(domid)) xlLog(config.name, line);
        return { stdout: "", stderr: stderr.join("\n") + "\n", exitCode: 0 };
      }
      kernelRuns = outcome === "kernel";
    }
    try {
      record.netns = plugVifs(domid, config.name, config.nics);
    } catch (e) {
      fail(e as XlError);
    }
    if (config.kind === "vtpm") {
      try {
        record.swtpm = startSwtpm({
          name: config.name,
          image: config.disks[0].pdev_path,
          tpm2: config.tpm2,
          runDir: path.join(LAB_DIR, "vtpm", config.name),
        });
      } catch (e) {
        if (record.netns) unplugVifs(record.netns, config.name);
        throw e;
      }
    }
    if (kernelRuns) {
      // The kernel's first line comes before anything its cloud-init starts.
      consoleLog(config.name, `[    0.000000] Linux version ${os.release()} (tvd-lab guest stand-in)`);
      try {
        bootGuest(settings, state, record);
      } catch (e) {
        stopGuest(record);
        if (record.netns) unplugVifs(record.netns, config.name);
        throw e;
      }
    }
    state.domains.push(record);
    saveState(state);

    const tree = loadTree();
    xsWrite(tree, `/local/domain/${domid}/name`, config.name);
    xsWrite(tree, `/local/domain/${domid}/domid`, String(domid));
    xsWrite(tree, `/local/domain/${domid}/vm`, `/vm/${config.uuid}`);
    xsWrite(tree, `/local/domain/${domid}/memory/target`, String(config.memoryMiB * 1024));
    // libxl makes data/ writable by the domain: where a guest reports to dom0.
    xsWrite(tree, `/local/domain/${domid}/data`, "");
    saveTree(tree);
    for (const dev of devices) writeVtpmNodes(record, dev, 4);

    xlLog(config.name, `Waiting for domain ${config.name} (domid ${domid}) to die [pid ${process.pid}]`);
    bootConsole(settings, state, record);
    return { stdout: "", stderr: stderr.join("\n") + "\n", exitCode: 0 };
  } catch (e) {
    // "Parsing config from ..." comes first, as xl prints it before any problem is found.
    throw e instanceof XlError ? new XlError([...stderr, ...e.lines], e.exitCode) : e;
  }
}

/**
 * Mini-OS's start of day: its banner, then its start info, of which the emulator prints the
 * command line (a manager's owner_auth= and srk_auth= included, as real Mini-OS does).
 */
function miniOsBanner(d: DomainRecord): void {
  consoleLog(d.name, "Xen Minimal OS (pv)!");
  consoleLog(d.name, `    cmd_line: ${d.config.cmdline ?? ""}`);
}

/** What each kind of domain prints on its console as it comes up (texts from Xen's vTPM docs). */
function bootConsole(settings: HostSettings, state: HostState, d: DomainRecord): void {
  switch (d.config.kind) {
    case "vtpmmgr": {
      const image = d.config.disks[0]?.pdev_path;
      miniOsBanner(d);
      consoleLog(d.name, "INFO[VTPM]: Starting vTPM manager domain");
      if (image && state.dirtyImages.includes(image)) {
        consoleLog(d.name, "WARNING[VTPM]: manager storage was not shut down cleanly; vTPM keys may be lost");
      }
      // The manager needs a while to take ownership of the TPM; the line appears later.
      const child = spawn(
        "sh",
        [
          "-c",
          'sleep "$1"; exec flock "$2" "$3" "$4" __manager-ready "$5"',
          "manager-ready",
          String(settings.managerReadyDelaySec),
          path.join(LAB_DIR, "lab.lock"),
          settings.node,
          settings.xlMain,
          String(d.domid),
        ],
        { detached: true, stdio: "ignore" },
      );
      child.unref();
      return;
    }
    case "vtpm":
      miniOsBanner(d);
      consoleLog(
        d.name,
        `Info: vTPM ${d.config.tpm2 ? "2.0" : "1.2"} state on ${d.config.disks[0]?.pdev_path}`,
      );
      consoleLog(d.name, "Info: Waiting for frontend domain to connect..");
      return;
    case "guest":
      for (const dev of d.vtpms) {
        consoleLog(dev.backendName, `Info: VTPM attached to Frontend ${d.domid}/${dev.devid}`);
      }
      return;
  }
}

/** Called by the delayed process bootConsole starts; the domain may be gone by then. */
export function managerReady(domid: number): void {
  const state = loadState();
  const d = state.domains.find((x) => x.domid === domid && x.config.kind === "vtpmmgr");
  if (!d) return;
  d.ready = true;
  saveState(state);
  consoleLog(d.name, "INFO[VTPM]: Waiting for commands from vTPM's:");
}

function teardown(state: HostState, d: DomainRecord): void {
  stopGuest(d);
  if (d.swtpm) stopSwtpm(d.swtpm);
  if (d.netns) unplugVifs(d.netns, d.name);
  if (d.config.kind === "vtpmmgr") {
    const users = state.domains.filter((x) => x.vtpms.some((v) => v.backendDomid === d.domid));
    const image = d.config.disks[0]?.pdev_path;
    if ((!d.ready || users.length) && image) {
      // Real xl destroys it anyway; the manager's disk may then be inconsistent.
      if (!state.dirtyImages.includes(image)) state.dirtyImages.push(image);
      consoleLog(
        d.name,
        `ERROR[VTPM]: destroyed while ${d.ready ? `${users.length} vTPM(s) were connected` : "initializing"}; storage may be inconsistent`,
      );
    } else if (image) {
      state.dirtyImages = state.dirtyImages.filter((i) => i !== image);
    }
  }
  // Frontends lose their backend: their device goes to Closed (6).
  for (const fe of state.domains) {
    for (const dev of fe.vtpms.filter((v) => v.backendDomid === d.domid)) {
      writeVtpmNodes(fe, dev, 6);
      consoleLog(fe.name, `Error: vtpm backend ${d.name} went away`);
    }
  }
  state.domains = state.domains.filter((x) => x !== d);
  removeDomainNodes(d.domid);
  xlLog(d.name, `Domain ${d.domid} has been destroyed.`);
}

function destroy(args: string[]): XlOutput {
  const force = args.includes("-f");
  const target = args.find((a) => !a.startsWith("-"));
  if (target === undefined) throw xlErrors.tooFewArgs("destroy", 1);
  if (target === "0" && !force) throw new XlError(["Destroying domid 0 is not allowed."], 1);
  const state = loadState();
  if (/^\d+$/.test(target) && !state.domains.some((d) => d.domid === Number(target)))
    throw xlErrors.destroyFailed();
  const d = resolve(state, target);
  // A device whose backend domain is already gone is only cleaned up on the frontend side.
  const orphaned = d.vtpms
    .filter((v) => !state.domains.some((x) => x.domid === v.backendDomid))
    .map(
      (v) =>
        `libxl: info: libxl_device.c:1067:libxl__initiate_device_generic_remove: backend /local/domain/${v.backendDomid}/backend/vtpm/${d.domid}/${v.devid} already removed, cleanup frontend only\n`,
    );
  teardown(state, d);
  saveState(state);
  return { stdout: "", stderr: orphaned.join(""), exitCode: 0 };
}

function shutdown(settings: HostSettings, args: string[]): XlOutput {
  const target = args.find((a) => !a.startsWith("-"));
  if (target === undefined) throw xlErrors.tooFewArgs("shutdown", 1);
  const state = loadState();
  const d = resolve(state, target);
  const said = `Shutting down domain ${d.domid}`;
  if (d.config.kind === "vtpmmgr") {
    // vtpmmgr-stubdom never acknowledges a shutdown request: it must be destroyed.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, settings.shutdownAckTimeoutSec * 1000);
    throw new XlError([said, ...xlErrors.shutdownTimeout().lines], 1);
  }
  teardown(state, d);
  saveState(state);
  return { stdout: "", stderr: said + "\n", exitCode: 0 };
}

function list(settings: HostSettings, args: string[]): XlOutput {
  const long = args.includes("-l") || args.includes("--long");
  const names = args.filter((a) => !a.startsWith("-"));
  const state = loadState();
  const domains = names.length ? names.map((n) => resolve(state, n)) : state.domains;
  return {
    stdout: long
      ? renderListLong(domains, names.length ? undefined : settings)
      : renderList(settings, domains, Date.now()),
    stderr: "",
    exitCode: 0,
  };
}

function vtpmRows(state: HostState, d: DomainRecord): VtpmRow[] {
  return d.vtpms.map((v) => {
    const be = state.domains.find((x) => x.domid === v.backendDomid);
    return {
      devid: v.devid,
      backendDomid: v.backendDomid,
      uuid: v.uuid,
      state: be ? 4 : 6,
      frontendDomid: d.domid,
    };
  });
}

function vtpmList(args: string[]): XlOutput {
  if (!args.length) throw xlErrors.tooFewArgs("vtpm-list", 1);
  const state = loadState();
  let stdout = "";
  const stderr: string[] = [];
  for (const arg of args) {
    try {
      stdout += renderVtpmList(vtpmRows(state, resolve(state, arg)));
    } catch {
      // xl vtpm-list reports and carries on; its exit code is always 0.
      stderr.push(`${arg} is an invalid domain identifier`);
    }
  }
  return { stdout, stderr: stderr.length ? stderr.join("\n") + "\n" : "", exitCode: 0 };
}

function vtpmAttach(args: string[]): XlOutput {
  if (!args.length) throw xlErrors.tooFewArgs("vtpm-attach", 1);
  const [target, ...rest] = args;
  const state = loadState();
  const d = resolve(state, target);
  let uuid: string | undefined;
  let backend = "Domain-0";
  for (const arg of rest) {
    if (arg.startsWith("uuid=")) {
      uuid = arg.slice(5);
      if (!isUuid(uuid)) throw xlErrors.badUuidArg(uuid);
    } else if (arg.startsWith("backend=")) backend = arg.slice(8);
    else throw xlErrors.unrecognized(arg);
  }
  const devid = d.vtpms.reduce((m, v) => Math.max(m, v.devid + 1), 0);
  let dev: VtpmDevice;
  try {
    dev = vtpmDevice(state, d.domid, d.config.kind, { backend, uuid }, devid);
  } catch {
    throw xlErrors.vtpmAddFailed();
  }
  d.vtpms.push(dev);
  saveState(state);
  writeVtpmNodes(d, dev, 4);
  consoleLog(dev.backendName, `Info: VTPM attached to Frontend ${d.domid}/${dev.devid}`);
  return { stdout: "", stderr: "", exitCode: 0 };
}

function vtpmDetach(args: string[]): XlOutput {
  if (args.length < 2) throw xlErrors.tooFewArgs("vtpm-detach", 2);
  const [target, which] = args;
  const state = loadState();
  const d = resolve(state, target);
  const dev = d.vtpms.find((v) =>
    isUuid(which) ? v.uuid === which.toLowerCase() : String(v.devid) === which,
  );
  if (!dev) throw xlErrors.unknownDevice(which);
  d.vtpms = d.vtpms.filter((v) => v !== dev);
  saveState(state);
  const tree = loadTree();
  xsRemove(tree, `/local/domain/${d.domid}/device/vtpm/${dev.devid}`);
  xsRemove(tree, `/local/domain/${dev.backendDomid}/backend/vtpm/${d.domid}/${dev.devid}`);
  saveTree(tree);
  return { stdout: "", stderr: "", exitCode: 0 };
}

function info(settings: HostSettings, args: string[]): XlOutput {
  const text = renderInfo(settings, loadState().domains, os.release());
  const keys = args.filter((a) => !a.startsWith("-"));
  if (!keys.length) return { stdout: text, stderr: "", exitCode: 0 };
  const values = text
    .split("\n")
    .filter((l) => keys.includes(l.split(":")[0].trim()))
    .map((l) => l.slice(l.indexOf(":") + 1).trim());
  return { stdout: values.map((v) => v + "\n").join(""), stderr: "", exitCode: 0 };
}

function domid(args: string[]): XlOutput {
  if (!args.length) throw xlErrors.tooFewArgs("domid", 1);
  if (args[0] === "Domain-0") return { stdout: "0\n", stderr: "", exitCode: 0 };
  const d = byName(loadState(), args[0]);
  if (!d) throw xlErrors.noDomid(args[0]);
  return { stdout: `${d.domid}\n`, stderr: "", exitCode: 0 };
}

function domname(args: string[]): XlOutput {
  if (!args.length) throw xlErrors.tooFewArgs("domname", 1);
  if (args[0] === "0") return { stdout: "Domain-0\n", stderr: "", exitCode: 0 };
  const d = loadState().domains.find((x) => String(x.domid) === args[0]);
  if (!d) throw xlErrors.noDomname(args[0]);
  return { stdout: `${d.name}\n`, stderr: "", exitCode: 0 };
}

export function runXl(argv: string[]): XlOutput {
  const settings = loadSettings();
  const [command, ...args] = argv;
  try {
    switch (command) {
      case "create":
        return create(settings, args);
      case "destroy":
        return destroy(args);
      case "shutdown":
        return shutdown(settings, args);
      case "list":
        return list(settings, args);
      case "vtpm-list":
        return vtpmList(args);
      case "vtpm-attach":
        return vtpmAttach(args);
      case "vtpm-detach":
        return vtpmDetach(args);
      case "info":
        return info(settings, args);
      case "domid":
        return domid(args);
      case "domname":
        return domname(args);
      default:
        throw xlErrors.notImplemented();
    }
  } catch (e) {
    if (e instanceof XlError) return { stdout: "", stderr: e.lines.join("\n") + "\n", exitCode: e.exitCode };
    throw e;
  }
}
