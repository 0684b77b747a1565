/**
 * Issue 12.4, hostile input, generated: every string input of every resource and construct, the
 * values fast-check makes for it, and what is proven of each value. A value is either rejected
 * by the kind's own `check` (or the construct's constructor), naming the property and saying the
 * fix, or accepted and then inert wherever it is rendered: the xl config the kind writes reads
 * back, through the kind's own observer, as exactly the declared inputs; the cloud-init seed's
 * YAML parses back to the values it was given; a certificate's subject and names read back equal;
 * and the value passes a shell command line (joinArgv, as every remote command) byte for byte.
 *
 * Pure but for local tools (ssh-keygen for SSH certificates, /bin/sh for quoting, python3 for
 * PyYAML): nothing here contacts a dom0. The dom0 side of rendering is a paper dom0 that keeps
 * what a lifecycle writes and shows it back, so the kinds' real update and observe run as they
 * are. Shared by test/unit/hostile.property.test.ts and test/lab/hostile.property.test.ts.
 */
import { spawn } from "node:child_process";
import { createPublicKey } from "node:crypto";
import { isIP } from "node:net";
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import forge from "node-forge";
import { TrustedVirtualDomain, type TrustedVirtualDomainProps } from "../../constructs/trustedVirtualDomain";
import { XenHost } from "../../constructs/xenHost";
import { AGENT_UNIT } from "../../provider/cloudinit/agent";
import { SEED_PATHS, renderSeedFiles, type MemberSeed } from "../../provider/cloudinit/render";
import { parseInputs, type ResourceDefinition } from "../../provider/core/define";
import { artifactKey, declareInProgram, resetProgramDeclarations } from "../../provider/core/ownership";
import { Dom0 } from "../../provider/dom0/dom0";
import type { FileReport, InspectTarget } from "../../provider/dom0/inspect";
import type { ResourceKind } from "../../provider/dynamic";
import {
  describeCertificate,
  generateSshKeyPair,
  publicKeyFingerprint,
  signHostCertificate,
} from "../../provider/pki/ssh";
import { createTvdCa, issueIdentityCertificate, issueTpmKeyCertificate } from "../../provider/pki/x509";
import { guestDomainOf } from "../../provider/resources/guest/args";
import * as guest from "../../provider/resources/guest/provider";
import * as hostFacts from "../../provider/resources/hostFacts/provider";
import * as memberAttestation from "../../provider/resources/memberAttestation/provider";
import * as memberIdentity from "../../provider/resources/memberIdentity/provider";
import * as memberPort from "../../provider/resources/memberPort/provider";
import * as revocationList from "../../provider/resources/revocationList/provider";
import { memberSeedOf, seedPathOf } from "../../provider/resources/seedImage/args";
import * as seedImage from "../../provider/resources/seedImage/provider";
import { configPathOf } from "../../provider/resources/stubdom";
import * as tvdAuthority from "../../provider/resources/tvdAuthority/provider";
import * as tvdNetwork from "../../provider/resources/tvdNetwork/provider";
import * as vtpm from "../../provider/resources/vtpm/provider";
import * as vtpmIdentity from "../../provider/resources/vtpmIdentity/provider";
import * as vtpmManager from "../../provider/resources/vtpmManager/provider";
import { lifecycle } from "../../provider/runtime";
import { endpointOf, type Connection } from "../../provider/transport/connection";
import type { CheckFailure } from "../../provider/validation";
import { parseXlConfig, renderXlConfig, type XlValue } from "../../provider/xl/config";
import { renderGuestConfig } from "../../provider/xl/domains";
import { HOSTILE } from "./hostile";
import { readReliability, recordReliability, reliabilityScope } from "./reliability";
import { paperOutputs, resolved, takePaperResources } from "./paperPulumi";

// eslint-disable-next-line @typescript-eslint/no-require-imports -- js-yaml ships no types; it is in node_modules through @pulumi/pulumi
const yaml = require("js-yaml") as { load(text: string): unknown };

// ---- the seed and how to replay a value ------------------------------------------------------

/** The fixed seed every run uses unless HOSTILE_SEED says otherwise; printed on any failure. */
export const DEFAULT_SEED = 1204;

export interface Replay {
  readonly seed: number;
  /** fast-check's path of one value (its run index), to replay it alone: HOSTILE_PATH. */
  readonly path?: string;
  /** Only the input with this id (HOSTILE_INPUT), e.g. "Guest.cmdline". */
  readonly only?: string;
}

/**
 * The seed fast-check gets for one input: the run's seed mixed with the input's id, so that
 * inputs of one shape (every kind's connection.host) are tried with values of their own.
 */
export function seedFor(seed: number, input: HostileInput): number {
  let h = seed >>> 0;
  for (const ch of inputId(input)) h = Math.imul(h ^ ch.codePointAt(0)!, 16777619) >>> 0;
  return h | 0;
}

export function replayFromEnv(): Replay {
  const seed = process.env.HOSTILE_SEED ? Number(process.env.HOSTILE_SEED) : DEFAULT_SEED;
  if (!Number.isSafeInteger(seed))
    throw new Error(`HOSTILE_SEED must be an integer, got ${process.env.HOSTILE_SEED}`);
  return { seed, path: process.env.HOSTILE_PATH || undefined, only: process.env.HOSTILE_INPUT || undefined };
}

// ---- generators ------------------------------------------------------------------------------

/** Characters shells, xl configs, YAML and certificates give a meaning to, and invisible ones. */
const META = [
  ..."'\"`$;|&<>(){}[]*?~!#\\ \t\n\r\0,=:/.-_@+%^",
  "$(",
  "${",
  "..",
  "--",
  "\u00a0",
  "\u0085",
  "\u2028",
  "\u200b",
  "\u202e",
  "\ufeff",
  "\x1b",
  "\x7f",
  "é",
  "🔐",
];

/** Words YAML 1.1 or 1.2 would read as something else than a string, and YAML syntax. */
const YAML_WORDS = [
  ...["yes", "No", "ON", "off", "y", "n", "true", "False", "null", "~", "NaN", ".inf", "-.Inf"],
  ...["0x1f", "0o17", "010", "1e3", "1_000", "12:30:45", "2026-11-01", "=", "<<"],
  ...["- a", "a: b", "&anchor", "*alias", "!!str", "|", "> folded", "%TAG", "---", "...", "? q"],
];

const oneChar: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...META.filter((m) => [...m].length === 1)) },
  { weight: 2, arbitrary: fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 1 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) },
);

/** A valid value with one character replaced, inserted or deleted. */
function nearValid(valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc
    .tuple(valid, fc.nat(), fc.constantFrom("replace", "insert", "delete"), oneChar)
    .map(([v, n, op, c]) => {
      const chars = [...v];
      const i = n % (chars.length + 1);
      if (op === "insert") chars.splice(i, 0, c);
      else if (chars.length) chars.splice(Math.min(i, chars.length - 1), 1, ...(op === "replace" ? [c] : []));
      return chars.join("");
    });
}

/** A valid value with a hostile fragment spliced in somewhere. */
function spliced(valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc
    .tuple(valid, fc.nat(), fc.constantFrom(...HOSTILE, ...META, ...YAML_WORDS))
    .map(([v, n, fragment]) => {
      const chars = [...v];
      const i = n % (chars.length + 1);
      return [...chars.slice(0, i), fragment, ...chars.slice(i)].join("");
    });
}

/** Arbitrary unicode with shell, quote and control characters over-represented. */
const hostileText: fc.Arbitrary<string> = fc.string({
  unit: fc.oneof(
    { weight: 2, arbitrary: fc.constantFrom(...META) },
    { weight: 1, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) },
    { weight: 1, arbitrary: fc.string({ unit: "grapheme", minLength: 1, maxLength: 1 }) },
  ),
  maxLength: 40,
});

/**
 * Values for one input: mostly near-valid (so that acceptances and rejections both happen, at
 * the border), valid ones as they are, valid ones with a hostile fragment, and hostile text.
 * Lone UTF-16 surrogates are not made: the engine hands inputs over gRPC as UTF-8, which cannot
 * carry one.
 */
export function valuesFor(input: HostileInput): fc.Arbitrary<string> {
  const valid = input.shape
    ? fc.oneof(fc.constantFrom(...input.valid), fc.stringMatching(input.shape))
    : fc.constantFrom(...input.valid);
  return fc.oneof(
    { weight: 5, arbitrary: nearValid(valid) },
    { weight: 2, arbitrary: valid },
    { weight: 2, arbitrary: spliced(valid) },
    { weight: 2, arbitrary: hostileText },
    { weight: 1, arbitrary: fc.constantFrom(...HOSTILE, ...YAML_WORDS) },
  );
}

// ---- the inputs ------------------------------------------------------------------------------

export type HostileKind = ResourceKind | "XenHost" | "TrustedVirtualDomain";

export interface HostileInput {
  readonly kind: HostileKind;
  /** The property path as check names it (`vifs.0.bridge`); for a construct, its props path. */
  readonly name: string;
  /** Which form of the kind, when one input is tried in two (a guest's cmdline under pv-grub). */
  readonly variant?: string;
  /** Valid values, the starting points of near-valid ones. */
  readonly valid: readonly string[];
  /** A pattern valid values have, for more of them. */
  readonly shape?: RegExp;
  /** Props laid over the kind's base before the value (a variant's). */
  readonly base?: Record<string, unknown>;
  /** The schema takes every string up to a length: no rejection is expected of short ones. */
  readonly anyString?: boolean;
  /** Accepted values may hold a NUL (file content): they are data, never a command's argument. */
  readonly data?: boolean;
  /**
   * Constructs. `says`: the constructor validates this input (its message must name it so), and
   * nothing it lets through may be refused later by a resource's check. `landsIn`: the properties
   * of the resources it declares that the value lands in, which name it when their check refuses
   * it (for inputs the constructor passes on unvalidated, as a guest template's kernel).
   */
  readonly says?: RegExp;
  readonly landsIn?: readonly string[];
}

export function inputId(i: Pick<HostileInput, "kind" | "name" | "variant">): string {
  return `${i.kind}.${i.name}${i.variant ? ` (${i.variant})` : ""}`;
}

const DOMAIN_NAMES = ["vtpmmgr", "web1-vtpm", "red-01", "a", "Web_1.b-c", `x${"y".repeat(63)}`];
const DOMAIN_SHAPE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,70}$/;
const ANY_PATHS = ["/usr/lib/xen/boot/vtpm-stubdom.gz", "/boot/my kernel", "/opt/it's/k.gz", "/a/b c/d\\e"];
const ANY_PATH_SHAPE = /^(\/[A-Za-z0-9 _.,'"$@+=-]{1,12}){1,4}$/;
const SAFE_PATHS = [
  "/usr/lib/xen/boot/vmlinuz",
  "/var/lib/xen/images/debian-base.raw",
  "/srv/img/base+1@x.raw",
];
const SAFE_PATH_SHAPE = /^(\/[A-Za-z0-9_.+@-]{1,12}){1,4}$/;
const XEN_PATH_SHAPE = /^\/var\/lib\/xen\/[A-Za-z0-9_.+@-]{1,16}(\/[A-Za-z0-9_.+@-]{1,16})?$/;
const IPV4S = ["10.50.0.11", "192.168.100.7", "255.255.255.254", "1.2.3.4"];
const IPV4_SHAPE = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;
const MACS = ["00:16:3e:00:00:01", "00:16:3e:7f:ab:cd"];
const MAC_SHAPE = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;
const DNS_NAMES = ["red-01", "red-01.red.tvd", "a.b", "x1.example.org"];
const SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGSYOdL3PMjvQ2yKbd3Zb1q9d8XmH0i1k6GkxS2pJ5cz";
const SSH_CERT = `ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29t red-01`;
const SHA1 = "0123456789abcdef0123456789abcdef01234567";

/** Every string input of every resource kind and construct. */
export const HOSTILE_INPUTS: readonly HostileInput[] = [
  // Every kind with a connection takes it alike (one schema): tried on HostFacts, the kind that
  // exists only to connect, and on the kinds that write.
  ...(["HostFacts", "VtpmManager", "Guest", "TvdNetwork"] as const).flatMap((kind): HostileInput[] => [
    {
      kind,
      name: "connection.host",
      valid: ["dom0-a.example", "10.0.0.5", "fd00::5", "dom0-a"],
      shape: /^[a-z0-9][a-z0-9.:-]{0,30}$/,
    },
    {
      kind,
      name: "connection.user",
      valid: ["root", "xen_admin", "ops-1"],
      shape: /^[a-z_][a-z0-9_-]{0,15}$/,
    },
  ]),
  {
    kind: "HostFacts",
    name: "connection.hostKeyFingerprint",
    valid: ["SHA256:2YoGODrjA6EiV4WG453g7QmRmtOEpbHSmq5Q09i6kkI"],
    shape: /^SHA256:[A-Za-z0-9+/]{43}$/,
  },
  {
    kind: "HostFacts",
    name: "xenDataDir",
    valid: ["/var/lib/xen", "/srv/xen data", "/x/'q'"],
    shape: ANY_PATH_SHAPE,
  },

  ...(["VtpmManager", "Vtpm"] as const).flatMap((kind): HostileInput[] => [
    { kind, name: "name", valid: DOMAIN_NAMES, shape: DOMAIN_SHAPE },
    { kind, name: "kernel", valid: ANY_PATHS, shape: ANY_PATH_SHAPE },
    { kind, name: "ramdisk", valid: ["/usr/lib/xen/boot/initrd.img", ...ANY_PATHS], shape: ANY_PATH_SHAPE },
    {
      kind,
      name: "imagePath",
      valid: ["/var/lib/xen/vtpm/mgr.img", "/etc/xen/k+1@x.img"],
      shape: XEN_PATH_SHAPE,
    },
    { kind, name: "configDir", valid: ["/etc/xen", "/var/lib/xen/cfg"], shape: XEN_PATH_SHAPE },
    {
      kind,
      name: "allowedRoots.2",
      base: { allowedRoots: ["/var/lib/xen", "/etc/xen"] },
      valid: ["/srv/xen", "/var/lib/xen", "/x y/'z'"],
      shape: ANY_PATH_SHAPE,
    },
  ]),
  ...(["ownerAuth", "srkAuth"] as const).map((name): HostileInput => ({
    kind: "VtpmManager",
    name,
    valid: ["well-known", SHA1, `hash:${SHA1}`],
    shape: /^(hash:)?[0-9a-f]{40}$/,
  })),
  {
    kind: "VtpmManager",
    name: "iomem.0",
    valid: ["fed40,5", "FED40", "fed40,1"],
    shape: /^[0-9a-fA-F]{1,8}(,\d{1,2})?$/,
  },
  { kind: "Vtpm", name: "manager", valid: DOMAIN_NAMES, shape: DOMAIN_SHAPE },
  {
    kind: "Vtpm",
    name: "uuid",
    valid: ["ac0a5b9e-cbe2-4c07-b43b-1d69e46fb839"],
    shape: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
  },
  { kind: "Vtpm", name: "logLevel", valid: ["error", "info", "debug"] },
  {
    kind: "Vtpm",
    name: "hwInitPcr",
    valid: ["0-7", "all", "none", "0-7,10", "1,2,3"],
    shape: /^\d{1,2}(-\d{1,2})?(,\d{1,2}(-\d{1,2})?){0,3}$/,
  },

  { kind: "Guest", name: "name", valid: DOMAIN_NAMES, shape: DOMAIN_SHAPE },
  { kind: "Guest", name: "baseImage", valid: SAFE_PATHS, shape: SAFE_PATH_SHAPE },
  { kind: "Guest", name: "overlayPath", valid: ["/var/lib/xen/images/web1.qcow2"], shape: XEN_PATH_SHAPE },
  { kind: "Guest", name: "configDir", valid: ["/etc/xen", "/var/lib/xen/cfg"], shape: XEN_PATH_SHAPE },
  { kind: "Guest", name: "kernel", valid: SAFE_PATHS, shape: SAFE_PATH_SHAPE },
  { kind: "Guest", name: "ramdisk", valid: ["/usr/lib/xen/boot/initrd.img"], shape: SAFE_PATH_SHAPE },
  {
    kind: "Guest",
    name: "cmdline",
    valid: ["root=/dev/xvda ro console=hvc0", "quiet a='b c' $HOME;x `y` \\z", "x"],
    shape: /^[ -~]{0,40}$/,
  },
  {
    kind: "Guest",
    name: "cmdline",
    variant: "pvgrub",
    base: { bootLoader: "pvgrub", kernel: undefined, ramdisk: undefined },
    valid: ["(hd0,0)/boot/grub/menu.lst", "(hd0)/grub.cfg 'x'"],
    shape: /^[ -~]{0,40}$/,
  },
  { kind: "Guest", name: "vtpm", valid: DOMAIN_NAMES, shape: DOMAIN_SHAPE },
  {
    kind: "Guest",
    name: "vifs.0.bridge",
    valid: ["xenbr0", "tvd-red", "br.1_a"],
    shape: /^[A-Za-z0-9_.-]{1,17}$/,
  },
  { kind: "Guest", name: "vifs.0.mac", valid: MACS, shape: MAC_SHAPE },
  {
    kind: "Guest",
    name: "vifs.0.vifname",
    valid: ["tvp-red-01", "p0", "t.1_a"],
    shape: /^[A-Za-z0-9_.-]{1,17}$/,
  },
  {
    kind: "Guest",
    name: "vifs.0.ip",
    valid: ["10.50.0.11/24", "192.168.1.255/32"],
    shape: /^[\d.]{7,15}\/\d{1,2}$/,
  },
  {
    kind: "Guest",
    name: "extraDisks.0.target",
    valid: ["/var/lib/xen/images/web1-seed.img", "/dev/vg0/data"],
    shape: SAFE_PATH_SHAPE,
  },
  { kind: "Guest", name: "extraDisks.0.vdev", valid: ["xvdb", "xvdz"] },

  { kind: "SeedImage", name: "name", valid: DOMAIN_NAMES, shape: DOMAIN_SHAPE },
  { kind: "SeedImage", name: "path", valid: ["/var/lib/xen/images/red-01-seed.img"], shape: XEN_PATH_SHAPE },
  {
    kind: "SeedImage",
    name: "seed.instanceId",
    valid: ["red-01-0123456789ab", "i-1:2.3_4"],
    shape: /^[A-Za-z0-9][A-Za-z0-9._:-]{0,130}$/,
  },
  {
    kind: "SeedImage",
    name: "seed.hostname",
    valid: ["red-01", "a", "Z9", "no"],
    shape: /^[A-Za-z0-9-]{1,64}$/,
  },
  {
    kind: "SeedImage",
    name: "seed.fqdn",
    valid: DNS_NAMES.slice(1),
    shape: /^[a-z0-9-]{1,8}(\.[a-z0-9-]{1,8}){1,3}$/,
  },
  {
    kind: "SeedImage",
    name: "seed.network.address",
    valid: ["10.50.0.11/24", "fd00::11/64", "::ffff:1.2.3.4/128"],
    shape: /^[0-9a-f.:]{2,20}\/\d{1,3}$/,
  },
  {
    kind: "SeedImage",
    name: "seed.network.gateway",
    valid: ["10.50.0.1", "fd00::1"],
    shape: /^[0-9a-f.:]{2,20}$/,
  },
  {
    kind: "SeedImage",
    name: "seed.network.dns.0",
    valid: ["1.1.1.1", "2001:4860:4860::8888"],
    shape: /^[0-9a-f.:]{2,20}$/,
  },
  { kind: "SeedImage", name: "seed.macAddress", valid: MACS, shape: MAC_SHAPE },
  {
    kind: "SeedImage",
    name: "seed.interfaceName",
    valid: ["eth0", "ens3", "yes", "on", "null", "_x", "1e3"],
    shape: /^[A-Za-z0-9_.-]{1,17}$/,
  },
  ...["seed.sshAuthorizedKeys.0", "seed.sshCaPublicKeys.0", "seed.sshHostKey.publicKey"].map(
    (name): HostileInput => ({
      kind: "SeedImage",
      name,
      valid: [SSH_KEY, `${SSH_KEY} ops@example`, ` ${SSH_KEY} 'quoted' "comment" #x `],
    }),
  ),
  {
    kind: "SeedImage",
    name: "seed.sshAuthorizedKeys.0",
    variant: "options",
    valid: [`command="echo hi",no-pty ${SSH_KEY} x`],
  },
  { kind: "SeedImage", name: "seed.sshHostKey.certificate", valid: [SSH_CERT] },
  ...["seed.agent.ownerAuth", "seed.agent.srkAuth"].map((name): HostileInput => ({
    kind: "SeedImage",
    name,
    valid: ["0".repeat(64), "5a".repeat(32)],
    shape: /^[0-9a-f]{64}$/,
  })),
  {
    kind: "SeedImage",
    name: "seed.extraFiles.0.path",
    valid: ["/etc/motd", "/etc/tvd/role x"],
    shape: ANY_PATH_SHAPE,
  },
  {
    kind: "SeedImage",
    name: "seed.extraFiles.0.content",
    anyString: true,
    data: true,
    valid: [
      "hello\n",
      "l1\nl2\n\n",
      "  indented\n x\n",
      "#!/bin/sh\necho 'x' \"$y\"\n",
      "key: value\n- item\n",
      "\n\n",
      "",
    ],
  },
  { kind: "SeedImage", name: "seed.extraFiles.0.owner", valid: ["root", "root:root", "www-data:adm"] },
  {
    kind: "SeedImage",
    name: "seed.extraFiles.0.permissions",
    valid: ["0644", "0600", "0755"],
    shape: /^0[0-7]{3}$/,
  },

  {
    kind: "TvdNetwork",
    name: "bridge",
    valid: ["tvd-red", "br0x", "t.1_a"],
    shape: /^[A-Za-z0-9_.-]{1,17}$/,
  },
  {
    kind: "TvdNetwork",
    name: "holdingBridge",
    valid: ["tvh-red", "br1x", "t.2_a"],
    shape: /^[A-Za-z0-9_.-]{1,17}$/,
  },
  { kind: "TvdNetwork", name: "localIp", valid: ["10.99.0.1", ...IPV4S], shape: IPV4_SHAPE },
  { kind: "TvdNetwork", name: "peers.0", valid: ["10.99.0.2", ...IPV4S], shape: IPV4_SHAPE },

  { kind: "MemberPort", name: "port", valid: ["tvp-red-01", "p0", "t.1_a"], shape: /^[A-Za-z0-9_.-]{1,17}$/ },
  { kind: "MemberPort", name: "domain", valid: DOMAIN_NAMES, shape: DOMAIN_SHAPE },
  {
    kind: "TvdRevocationList",
    name: "memberSerials.0",
    valid: ["0a", "7f01", "01".repeat(20)],
    shape: /^[0-9a-f]{2,40}$/,
  },
  { kind: "MemberPort", name: "bridge", valid: ["tvd-red", "br0x"], shape: /^[A-Za-z0-9_.-]{1,17}$/ },
  { kind: "MemberPort", name: "holdingBridge", valid: ["tvh-red", "br1x"], shape: /^[A-Za-z0-9_.-]{1,17}$/ },
  {
    kind: "MemberPort",
    name: "admission",
    valid: ["ab".repeat(32), "0".repeat(40)],
    shape: /^[0-9a-f]{40,64}$/,
  },

  { kind: "TvdAuthority", name: "tvdName", valid: DOMAIN_NAMES, shape: DOMAIN_SHAPE },
  { kind: "MemberIdentity", name: "memberName", valid: DOMAIN_NAMES, shape: DOMAIN_SHAPE },
  {
    kind: "MemberIdentity",
    name: "hostnames.0",
    valid: DNS_NAMES,
    shape: /^[A-Za-z0-9-]{1,8}(\.[A-Za-z0-9-]{1,8}){0,3}$/,
  },
  { kind: "MemberIdentity", name: "ipAddresses.0", valid: IPV4S, shape: IPV4_SHAPE },
  { kind: "MemberIdentity", name: "sshCaPublicKey", valid: [SSH_KEY, `${SSH_KEY} red TVD SSH CA\n`] },
  {
    kind: "MemberIdentity",
    name: "rotation",
    anyString: true,
    data: true,
    valid: ["0", "2026-11", "r".repeat(256)],
  },
  { kind: "VtpmIdentity", name: "guest", valid: DOMAIN_NAMES, shape: DOMAIN_SHAPE },
  { kind: "VtpmIdentity", name: "memberName", valid: DOMAIN_NAMES, shape: DOMAIN_SHAPE },
  {
    kind: "VtpmIdentity",
    name: "rotation",
    anyString: true,
    data: true,
    valid: ["0", "2026-11", "r".repeat(256)],
  },
  { kind: "MemberAttestation", name: "guest", valid: DOMAIN_NAMES, shape: DOMAIN_SHAPE },

  {
    kind: "XenHost",
    name: "tunnelIp",
    valid: ["10.99.0.1", "192.168.100.7"],
    shape: IPV4_SHAPE,
    says: /\btunnelIp\b/,
    landsIn: ["localIp", "peers"],
  },
  {
    kind: "XenHost",
    name: "manager.name",
    valid: DOMAIN_NAMES,
    shape: DOMAIN_SHAPE,
    landsIn: ["name", "manager"],
  },
  {
    kind: "TrustedVirtualDomain",
    name: "name",
    valid: ["red", "blue7", "a", "abcdefghijk"],
    shape: /^[a-z][a-z0-9]{0,12}$/,
    says: /\bname\b/,
    landsIn: ["bridge", "tvdName", "name", "memberName", "hostnames", "seed.hostname", "seed.fqdn", "vtpm"],
  },
  {
    kind: "TrustedVirtualDomain",
    name: "members.0.name",
    valid: ["web", "db-1", "x", "a".repeat(31)],
    shape: /^[a-z0-9][a-z0-9-]{0,32}$/,
    says: /\bmember name\b/,
    landsIn: ["name", "memberName", "hostnames", "seed.hostname", "seed.fqdn", "vtpm"],
  },
  {
    kind: "TrustedVirtualDomain",
    name: "members.0.host",
    valid: ["dom0-a", "dom0-b"],
    says: /\bhost\b/,
    landsIn: [],
  },
  {
    kind: "TrustedVirtualDomain",
    name: "members.0.ip",
    valid: ["10.50.0.20", "10.50.0.254", "10.50.0.1"],
    shape: /^10\.50\.0\.\d{1,3}$/,
    says: /\bip\b/,
    landsIn: ["vifs.0.ip", "seed.network.address", "ipAddresses"],
  },
  {
    kind: "TrustedVirtualDomain",
    name: "network.subnet",
    valid: ["10.50.0.0/24", "10.60.0.0/16", "192.168.4.0/22"],
    shape: /^\d{1,3}\.\d{1,3}\.\d{1,3}\.0\/\d{2}$/,
    says: /\bnetwork\.subnet\b/,
    landsIn: ["vifs.0.ip", "seed.network.address", "ipAddresses"],
  },
  {
    kind: "TrustedVirtualDomain",
    name: "network.gateway",
    valid: ["10.50.0.1", "fd00::1"],
    shape: /^[0-9a-f.:]{2,20}$/,
    landsIn: ["seed.network.gateway"],
  },
  {
    kind: "TrustedVirtualDomain",
    name: "network.dns.0",
    valid: ["10.50.0.2", "1.1.1.1"],
    shape: /^[0-9a-f.:]{2,20}$/,
    landsIn: ["seed.network.dns"],
  },
  {
    kind: "TrustedVirtualDomain",
    name: "authorizedKeys.0",
    valid: [SSH_KEY, `${SSH_KEY} ops@example`],
    landsIn: ["seed.sshAuthorizedKeys"],
  },
  {
    kind: "TrustedVirtualDomain",
    name: "template.baseImage",
    valid: SAFE_PATHS,
    shape: SAFE_PATH_SHAPE,
    landsIn: ["baseImage"],
  },
  {
    kind: "TrustedVirtualDomain",
    name: "template.kernel",
    valid: SAFE_PATHS,
    shape: SAFE_PATH_SHAPE,
    landsIn: ["kernel"],
  },
  {
    kind: "TrustedVirtualDomain",
    name: "template.cmdline",
    valid: ["root=/dev/xvda ro console=hvc0", "a='b' $x"],
    shape: /^[ -~]{0,40}$/,
    landsIn: ["cmdline"],
  },
];

// ---- the material every value is tried with -------------------------------------------------

/** A CA and an SSH CA, made once, that certificates are issued from. */
export interface HostileEnv {
  readonly ca: { readonly certPem: string; readonly keyPem: string };
  readonly sshCa: { readonly privateKey: string; readonly publicKey: string };
}

export async function hostileEnv(): Promise<HostileEnv> {
  const ca = createTvdCa({ tvdName: "red", validityDays: 30 });
  const sshCa = await generateSshKeyPair("red TVD SSH CA");
  const env = { ca, sshCa };
  // A construct's resources compute these where an engine would run their create.
  paperOutputs((kind, key, props) => paperOutput(env, kind, key, props));
  return env;
}

const OPENSSH_KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const PEM_CERT = "-----BEGIN CERTIFICATE-----\nMIIBkTCB+w==\n-----END CERTIFICATE-----\n";
const PEM_KEY = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQ==\n-----END PRIVATE KEY-----\n";

export const CONNECTION = {
  host: "dom0-a.example",
  port: 22,
  user: "root",
  privateKey: OPENSSH_KEY,
  hostKeyFingerprint: "SHA256:2YoGODrjA6EiV4WG453g7QmRmtOEpbHSmq5Q09i6kkI",
};

function paperOutput(env: HostileEnv, kind: string, key: string, props: Record<string, unknown>): unknown {
  const outputs: Record<string, unknown> = {
    caCertPem: env.ca.certPem,
    caKeyPem: env.ca.keyPem,
    sshCaPublicKey: env.sshCa.publicKey,
    sshCaPrivateKey: env.sshCa.privateKey,
    sshHostPrivateKey: OPENSSH_KEY,
    sshHostPublicKey: SSH_KEY,
    sshHostCertificate: SSH_CERT,
    x509CertPem: env.ca.certPem,
    x509KeyPem: env.ca.keyPem,
    uuid: "ac0a5b9e-cbe2-4c07-b43b-1d69e46fb839",
    tpmOwnerAuth: "11".repeat(32),
    tpmSrkAuth: "22".repeat(32),
  };
  if (kind === "SeedImage" && key === "path" && typeof props.name === "string")
    return seedPathOf({ name: props.name });
  return outputs[key] ?? `paper-${key}`;
}

/** Valid props of each resource kind, the value under test laid over them. */
function baseProps(kind: ResourceKind, env: HostileEnv): Record<string, unknown> {
  const connection = CONNECTION;
  switch (kind) {
    case "HostFacts":
      return { connection, xenDataDir: "/var/lib/xen" };
    case "VtpmManager":
      return {
        connection,
        name: "vtpmmgr",
        ownerAuth: "well-known",
        srkAuth: `hash:${SHA1}`,
        running: false,
      };
    case "Vtpm":
      return {
        connection,
        name: "web1-vtpm",
        manager: "vtpmmgr",
        uuid: "ac0a5b9e-cbe2-4c07-b43b-1d69e46fb839",
        logLevel: "info",
        hwInitPcr: "0-7",
        maintCmds: false,
        running: false,
      };
    case "Guest":
      return {
        connection,
        name: "web1",
        baseImage: "/var/lib/xen/images/debian-base.raw",
        kernel: "/usr/lib/xen/boot/vmlinuz",
        ramdisk: "/usr/lib/xen/boot/initrd.img",
        cmdline: "root=/dev/xvda ro console=hvc0",
        vifs: [{ bridge: "xenbr0", mac: "00:16:3e:00:00:01", ip: "10.50.0.11/24" }],
        vtpm: "web1-vtpm",
        extraDisks: [{ target: "/var/lib/xen/images/web1-seed.img", vdev: "xvdb", access: "ro" }],
        running: false,
      };
    case "SeedImage":
      return {
        connection,
        name: "red-01",
        seed: {
          hostname: "red-01",
          fqdn: "red-01.red.tvd",
          network: { kind: "static", address: "10.50.0.11/24", gateway: "10.50.0.1", dns: ["10.50.0.2"] },
          macAddress: "00:16:3e:00:00:01",
          interfaceName: "eth0",
          sshHostKey: { privateKey: OPENSSH_KEY, publicKey: SSH_KEY, certificate: SSH_CERT },
          sshAuthorizedKeys: [SSH_KEY],
          sshCaPublicKeys: [env.sshCa.publicKey],
          // Short PEM blocks: the seed is the subject here, not the certificates in it.
          x509: { certPem: PEM_CERT, keyPem: PEM_KEY, caCertPem: PEM_CERT },
          agent: { ownerAuth: "11".repeat(32), srkAuth: "22".repeat(32) },
          extraFiles: [{ path: "/etc/motd", content: "hello\n", owner: "root:root", permissions: "0644" }],
        },
      };
    case "TvdNetwork":
      return { connection, bridge: "tvd-red", vni: 4242, localIp: "10.99.0.1", peers: ["10.99.0.2"] };
    case "TvdAuthority":
      return { tvdName: "red" };
    case "MemberIdentity":
      return {
        memberName: "red-01",
        hostnames: ["red-01", "red-01.red.tvd"],
        ipAddresses: ["10.50.0.11"],
        caCertPem: env.ca.certPem,
        caKeyPem: env.ca.keyPem,
        sshCaPrivateKey: env.sshCa.privateKey,
        sshCaPublicKey: env.sshCa.publicKey,
      };
    case "VtpmIdentity":
      return { connection, guest: "red-01", caCertPem: env.ca.certPem, caKeyPem: env.ca.keyPem };
    case "TvdRevocationList":
      return { caCertPem: env.ca.certPem, caKeyPem: env.ca.keyPem, memberSerials: ["0a"] };
    case "MemberPort":
      return {
        connection,
        port: "tvp-red-01",
        domain: "red-01",
        bridge: "tvd-red",
        holdingBridge: "tvh-red",
        admission: "ab".repeat(32),
      };
    case "MemberAttestation":
      return {
        connection,
        guest: "red-01",
        tpmVersion: "1.2",
        akPublic: "AAEAAQ==",
        baseline: { bank: "sha1", pcrs: { "4": "44".repeat(20), "5": "55".repeat(20) } },
      };
  }
}

/**
 * `obj` with `path` (dotted; numeric segments index arrays) set to `value`: what lies on the path
 * is copied, everything else (a construct's hosts) is shared.
 */
export function withPath<T>(obj: T, path: string, value: unknown): T {
  const [key, ...rest] = path.split(".");
  const copy = (Array.isArray(obj) ? [...obj] : { ...obj }) as Record<string, unknown>;
  copy[key] = rest.length
    ? withPath(copy[key] ?? (/^\d+$/.test(rest[0]) ? [] : {}), rest.join("."), value)
    : value;
  return copy as T;
}

export function atPath(obj: unknown, path: string): unknown {
  return path.split(".").reduce<unknown>((at, k) => (at as Record<string, unknown> | undefined)?.[k], obj);
}

// ---- what happens to one value --------------------------------------------------------------

export type Verdict = "rejected" | "accepted";

/** What one value did, and every way it broke a rule (none, for a good value). */
export interface Outcome {
  readonly verdict: Verdict;
  /** Broken rules about a rejection: a failure that names another property or says no fix. */
  readonly badRejection: readonly string[];
  /** Ways an accepted value changed a meaning where it was rendered. */
  readonly notInert: readonly string[];
  /** A construct value refused by the check of a resource it declared (not by its constructor). */
  readonly rejectedByResource?: boolean;
}

/**
 * Work that is done for many values at once after the generator ran (one ssh-keygen for many
 * principals, one shell for many arguments, one python for many YAML documents); each item keeps
 * the run index of its value so a failure can name fast-check's path.
 */
export interface Deferred {
  /** Values that reach a remote command line. */
  readonly argv: Array<{ run: number; value: string }>;
  readonly principals: Array<{ run: number; value: string }>;
  /** X.509 subject alternative names: DNS names and IPv4 addresses. */
  readonly sans: Array<{ run: number; value: string; ip: boolean }>;
  readonly keyIds: Array<{ run: number; value: string }>;
  readonly keyComments: Array<{ run: number; value: string }>;
  readonly yamlDocs: Array<{ run: number; text: string; expected: unknown }>;
  /** Rendered xl configs, for the lab's strict parser (libxlutil). */
  readonly xlConfigs: Array<{ run: number; text: string }>;
}

export function newDeferred(): Deferred {
  return { argv: [], principals: [], sans: [], keyIds: [], keyComments: [], yamlDocs: [], xlConfigs: [] };
}

const NAMES_A_FIX = /\S/;
const ZOD_DEFAULT = /^Invalid input(:|$)/;

/** Every failure names the input (or a property under it) and says how to fix it. */
function rejectionProblems(failures: readonly CheckFailure[], names: readonly string[]): string[] {
  const problems: string[] = [];
  for (const f of failures) {
    const named = names.some((n) => f.property === n || f.property.startsWith(`${n}.`));
    if (!named) problems.push(`a failure names ${f.property}, not ${names.join(" or ")}: ${f.reason}`);
    if (!NAMES_A_FIX.test(f.reason ?? "") || ZOD_DEFAULT.test(f.reason))
      problems.push(`the failure on ${f.property} says no fix: ${JSON.stringify(f.reason)}`);
  }
  return problems;
}

/** Each kind's lifecycle, as the runtime module serves it to the engine. */
function checkOf(kind: ResourceKind) {
  const l = lifecycle(kind);
  if (!l.check) throw new Error(`${kind} has no check`);
  return l.check.bind(l);
}

const DEFINITIONS: Record<ResourceKind, ResourceDefinition<object, object>> = {
  HostFacts: hostFacts.definition as unknown as ResourceDefinition<object, object>,
  VtpmManager: vtpmManager.definition as unknown as ResourceDefinition<object, object>,
  Vtpm: vtpm.definition as unknown as ResourceDefinition<object, object>,
  Guest: guest.definition as unknown as ResourceDefinition<object, object>,
  SeedImage: seedImage.definition as unknown as ResourceDefinition<object, object>,
  TvdNetwork: tvdNetwork.definition as unknown as ResourceDefinition<object, object>,
  TvdAuthority: tvdAuthority.definition as unknown as ResourceDefinition<object, object>,
  MemberIdentity: memberIdentity.definition as unknown as ResourceDefinition<object, object>,
  VtpmIdentity: vtpmIdentity.definition as unknown as ResourceDefinition<object, object>,
  MemberAttestation: memberAttestation.definition as unknown as ResourceDefinition<object, object>,
  MemberPort: memberPort.definition as unknown as ResourceDefinition<object, object>,
  TvdRevocationList: revocationList.definition as unknown as ResourceDefinition<object, object>,
};

/** Tries one value of one input. */
export async function tryValue(
  input: HostileInput,
  value: string,
  env: HostileEnv,
  run: number,
  deferred: Deferred,
): Promise<Outcome> {
  if (input.kind === "XenHost" || input.kind === "TrustedVirtualDomain")
    return tryConstructValue(input, value, run, deferred);
  const props = withPath({ ...baseProps(input.kind, env), ...input.base }, input.name, value);
  const r = await checkOf(input.kind)({}, props);
  if (r.failures?.length)
    return { verdict: "rejected", badRejection: rejectionProblems(r.failures, [input.name]), notInert: [] };
  const checked = r.inputs as Record<string, unknown>;
  const notInert: string[] = [];
  const arrived = atPath(checked, input.name);
  if (arrived !== value)
    notInert.push(`check handed on ${JSON.stringify(arrived)} for ${JSON.stringify(value)}`);
  notInert.push(...(await renderedInert(input.kind, checked, run, deferred)));
  if (!input.data) deferred.argv.push({ run, value });
  return { verdict: "accepted", badRejection: [], notInert };
}

// ---- constructs -----------------------------------------------------------------------------

const CONSTRUCT_FIX = /\b(give|set|add|fix|use|choose|remove|must be)\b/;

function buildConstruct(input: HostileInput, value: string): void {
  const hostA = { connection: CONNECTION, tunnelIp: "10.99.0.1", guestMemoryMiB: 65536 };
  const hostB = { ...hostA, tunnelIp: "10.99.0.2", connection: { ...CONNECTION, host: "dom0-b.example" } };
  const hostProps = input.kind === "XenHost" ? withPath(hostA, input.name, value) : hostA;
  // A second host where the value is about hosts (a tunnel address lands in the peers' lists).
  const twoHosts = input.name === "tunnelIp" || input.name === "members.0.host";
  const hosts = [new XenHost("dom0-a", hostProps), ...(twoHosts ? [new XenHost("dom0-b", hostB)] : [])];
  const props: TrustedVirtualDomainProps = {
    hosts,
    template: {
      baseImage: "/var/lib/xen/images/debian-base.raw",
      kernel: "/usr/lib/xen/boot/vmlinuz",
      memoryMiB: 256,
    },
    members: [{ name: "web", host: "dom0-a", ip: "10.50.0.20" }],
    network: { subnet: "10.50.0.0/24", gateway: "10.50.0.1", dns: ["10.50.0.2"] },
    authorizedKeys: [SSH_KEY],
  };
  if (input.kind === "TrustedVirtualDomain" && input.name === "name") new TrustedVirtualDomain(value, props);
  else
    new TrustedVirtualDomain(
      "red",
      input.kind === "TrustedVirtualDomain" ? withPath(props, input.name, value) : props,
    );
}

/** What a resource's inputs render to is checked once per distinct set of inputs. */
const renderedOnce = new Map<string, string[]>();

/**
 * A declared resource's check, once per distinct property bag: a construct declares the same
 * resources for most values (and a check that generates a default, a vTPM's UUID, then keeps
 * it). The bag's owner is left out here, so that what is remembered does not depend on which
 * other resources the program declared; `declaredTogether` then declares each resource's
 * artifacts in the program, as its check does with an owner.
 */
const checkedBags = new Map<
  string,
  { failures: CheckFailure[]; inputs: Record<string, unknown>; v?: object }
>();

async function checkedOnce(kind: ResourceKind, props: Record<string, unknown>) {
  const bag = { ...props, owner: undefined };
  const key = `${kind} ${JSON.stringify(bag)}`;
  let checked = checkedBags.get(key);
  if (!checked) {
    const r = await checkOf(kind)({}, bag);
    const inputs = r.inputs as Record<string, unknown>;
    const failures = r.failures ?? [];
    checked = { failures, inputs, v: failures.length ? undefined : parseInputs(DEFINITIONS[kind], inputs) };
    checkedBags.set(key, checked);
  }
  return checked;
}

/** The in-program conflicts a check with an owner reports: two resources on one artifact. */
function declaredTogether(kind: ResourceKind, v: object, owner: unknown): CheckFailure[] {
  const def = DEFINITIONS[kind];
  if (typeof owner !== "string" || !def.artifacts) return [];
  const c = (v as { connection: Connection }).connection;
  const item = (a: { type: string; name: string; role: string; property: string }, use?: boolean) => ({
    key: artifactKey(a as Parameters<typeof artifactKey>[0]),
    role: a.role,
    property: a.property,
    use,
  });
  return declareInProgram(`${c.host}:${c.port}`, owner, [
    ...def.artifacts(v).map((a) => item(a)),
    ...(def.uses?.(v) ?? []).map((a) => item(a, true)),
  ]);
}

async function tryConstructValue(
  input: HostileInput,
  value: string,
  run: number,
  deferred: Deferred,
): Promise<Outcome> {
  takePaperResources();
  // Each construct is its own program: what an earlier value declared is not in its way.
  resetProgramDeclarations();
  try {
    buildConstruct(input, value);
  } catch (e) {
    takePaperResources();
    const message = (e as Error).message;
    const badRejection: string[] = [];
    if (!input.says?.test(message))
      badRejection.push(`the constructor's error does not name ${input.name}: ${message}`);
    if (!CONSTRUCT_FIX.test(message)) badRejection.push(`the constructor's error says no fix: ${message}`);
    return { verdict: "rejected", badRejection, notInert: [] };
  }
  const checked: Array<{ kind: ResourceKind; inputs: Record<string, unknown> }> = [];
  const failures: CheckFailure[] = [];
  const children = takePaperResources();
  if (!children.length)
    return { verdict: "accepted", badRejection: [], notInert: ["the construct declared no resources"] };
  for (const child of children) {
    const kind = child.kind as ResourceKind;
    const props = await resolved(child.props);
    const r = await checkedOnce(kind, props);
    const found = r.v ? declaredTogether(kind, r.v, props.owner) : r.failures;
    if (found.length) failures.push(...found);
    else checked.push({ kind, inputs: r.inputs });
  }
  if (failures.length)
    return {
      verdict: "rejected",
      badRejection: input.says
        ? // The constructor validates this input: what it lets through must work.
          [`the constructor let it through and a resource's check refused it: ${show(failures)}`]
        : rejectionProblems(failures, input.landsIn ?? []),
      notInert: [],
      rejectedByResource: true,
    };
  const notInert: string[] = [];
  for (const { kind, inputs } of checked) {
    const key = `${kind} ${JSON.stringify(inputs)}`;
    let problems = renderedOnce.get(key);
    if (!problems) {
      problems = await renderedInert(kind, inputs, run, deferred);
      renderedOnce.set(key, problems);
    }
    notInert.push(
      ...problems.map(
        (p) => `${kind} ${String(inputs.name ?? inputs.memberName ?? inputs.bridge ?? "")}: ${p}`,
      ),
    );
  }
  if (!input.data) deferred.argv.push({ run, value });
  return { verdict: "accepted", badRejection: [], notInert };
}

// ---- rendering, kind by kind ----------------------------------------------------------------

/** Ways the checked inputs of a resource change meaning where the kind renders them. */
export async function renderedInert(
  kind: ResourceKind,
  checked: Record<string, unknown>,
  run: number,
  deferred: Deferred,
): Promise<string[]> {
  const def = DEFINITIONS[kind];
  const v = parseInputs(def, checked) as Record<string, unknown>;
  const problems: string[] = [];
  const connection = v.connection as Connection | undefined;
  if (connection) {
    // The endpoint names the host in every message and keys the connection pool.
    const m = /^([^@]*)@(.*):(\d+)$/.exec(endpointOf(connection));
    if (!m || m[1] !== connection.user || m[2] !== connection.host || Number(m[3]) !== connection.port)
      problems.push(`the endpoint ${endpointOf(connection)} reads back as another user, host or port`);
  }
  try {
    switch (kind) {
      case "VtpmManager":
      case "Vtpm":
      case "Guest":
        problems.push(...(await domainInert(kind, def, v, checked, run, deferred)));
        break;
      case "SeedImage":
        problems.push(...seedInert(v, run, deferred));
        break;
      case "TvdAuthority":
        problems.push(...authorityInert(v, run, deferred));
        break;
      case "MemberIdentity":
        problems.push(...identityInert(v, run, deferred));
        break;
      case "VtpmIdentity":
        problems.push(...tpmCertificatesInert(v));
        break;
      case "TvdNetwork":
        problems.push(...(await networkInert(v)));
        break;
      case "HostFacts":
        problems.push(...(await factsInert(v)));
        break;
    }
  } catch (e) {
    problems.push(`rendering threw: ${(e as Error).message}`);
  }
  return problems;
}

/**
 * A dom0 on paper: it keeps what a lifecycle writes and shows it back when inspected (the
 * domain stopped, every image and overlay present), so a kind's own update renders its config
 * and its own observe reads it back. Anything else a lifecycle would do on a host throws.
 */
function paperDom0(v: Record<string, unknown>): { dom0: Dom0; written: Map<string, string> } {
  const written = new Map<string, string>();
  const report = (t: InspectTarget): FileReport => {
    if (t.role === "config")
      return written.has(t.path) ? { exists: true, content: written.get(t.path) } : { exists: false };
    if (t.role === "overlay")
      return {
        exists: true,
        qcow2: {
          format: "qcow2",
          backingFile: String(v.baseImage),
          backingFormat: String(v.baseImageFormat),
        },
      };
    return { exists: true, sizeBytes: 1 << 20 };
  };
  const methods: Record<string, unknown> = {
    endpoint: "root@paper:22",
    inspect: async (_domain: string, targets: readonly InspectTarget[]) => ({
      domain: { running: false, vtpms: [], usedBy: [] },
      files: Object.fromEntries(targets.map((t) => [t.path, report(t)])),
    }),
    writeFileAtomic: async (path: string, content: string | Buffer) => {
      written.set(path, content.toString());
    },
    owners: async () => new Map(),
    removeFiles: async (paths: readonly string[]) => paths.forEach((p) => written.delete(p)),
  };
  const dom0 = new Proxy(methods, {
    get: (target, key) => {
      if (typeof key === "string" && key in target) return target[key];
      if (key === "then") return undefined;
      throw new Error(`the paper dom0 has no ${String(key)}: a lifecycle reached further than rendering`);
    },
  }) as unknown as Dom0;
  return { dom0, written };
}

function show(x: unknown): string {
  return JSON.stringify(x) ?? "undefined";
}

async function domainInert(
  kind: "VtpmManager" | "Vtpm" | "Guest",
  def: ResourceDefinition<object, object>,
  v: Record<string, unknown>,
  checked: Record<string, unknown>,
  run: number,
  deferred: Deferred,
): Promise<string[]> {
  const problems: string[] = [];
  const { dom0, written } = paperDom0(v);
  const ctx = { dom0, owner: "hostile/paper", state: {} };
  // The kind's own update writes the config exactly as a deploy would (and starts nothing: the
  // config is the same whether the domain is to run or not).
  const stopped = { ...v, running: false };
  await def.update(
    { ...ctx, olds: { ...checked, running: false }, changed: new Map<never, never>() },
    stopped,
  );
  const path = configPathOf(v as { configDir: string; name: string });
  const text = written.get(path);
  if (text === undefined) return [`no config was written at ${path}`];
  deferred.xlConfigs.push({ run, text });
  const settings = parseXlConfig(text);
  // The text is its settings and nothing else: rendered again, it reads the same.
  const again = parseXlConfig(renderXlConfig([...settings.entries()]));
  if (!isDeepStrictEqual(again, settings))
    problems.push("the config's settings do not survive a second rendering");
  if (kind === "Guest") {
    const declared = renderGuestConfig(guestDomainOf(v as Parameters<typeof guestDomainOf>[0]));
    const parsed = Object.fromEntries(settings) as Record<string, XlValue>;
    const wanted = Object.fromEntries(declared) as Record<string, XlValue>;
    if (!isDeepStrictEqual(parsed, wanted))
      problems.push(`the guest config parses as ${show(parsed)}, rendered from ${show(wanted)}`);
  }
  // The kind's own observer reads the file back as the declaration: no drift, no other meaning.
  const seen = (await def.observe(ctx, stopped)).seen as Record<string, unknown>;
  for (const [key, value] of Object.entries(seen)) {
    if (key === "running") continue;
    if (!isDeepStrictEqual(value, v[key]))
      problems.push(`${key} reads back from the config as ${show(value)}, declared ${show(v[key])}`);
  }
  return problems;
}

/** The three NoCloud documents, as cloud-init must read them for this seed. */
function seedMeaning(s: MemberSeed): Record<"meta-data" | "user-data" | "network-config", unknown> {
  const iface = s.interfaceName ?? "eth0";
  const n = s.network;
  const ethernet: Record<string, unknown> = s.macAddress
    ? { match: { macaddress: s.macAddress }, "set-name": iface }
    : {};
  if (n.kind === "dhcp") ethernet.dhcp4 = true;
  else {
    ethernet.dhcp4 = false;
    ethernet.addresses = [n.address];
    if (n.gateway) ethernet.routes = [{ to: isIP(n.gateway) === 6 ? "::/0" : "0.0.0.0/0", via: n.gateway }];
    if (n.dns?.length) ethernet.nameservers = { addresses: [...n.dns] };
  }
  type File = { path: string; content: string; permissions: string; owner: string };
  const files: File[] = [];
  // Leading and trailing blanks of a key line mean nothing to OpenSSH: the seed trims them.
  if (s.sshCaPublicKeys.length)
    files.push({
      path: SEED_PATHS.knownHosts,
      content: s.sshCaPublicKeys.map((k) => `@cert-authority * ${k.trim()}\n`).join(""),
      permissions: "0644",
      owner: "root:root",
    });
  if (s.sshHostKey)
    files.push({
      path: SEED_PATHS.sshdDropIn,
      content: "HostCertificate /etc/ssh/ssh_host_ed25519_key-cert.pub\n",
      permissions: "0644",
      owner: "root:root",
    });
  if (s.x509)
    files.push(
      { path: SEED_PATHS.x509Cert, content: s.x509.certPem, permissions: "0644", owner: "root:root" },
      { path: SEED_PATHS.x509Key, content: s.x509.keyPem, permissions: "0600", owner: "root:root" },
      { path: SEED_PATHS.x509Ca, content: s.x509.caCertPem, permissions: "0644", owner: "root:root" },
    );
  // The agent's auth values must land in its 0600 config as the exact hex given, nowhere else.
  if (s.agent)
    files.push(
      {
        path: "/etc/tvd/agent.json",
        content: `{"version":1,"ownerAuth":"${s.agent.ownerAuth}","srkAuth":"${s.agent.srkAuth}"}\n`,
        permissions: "0600",
        owner: "root:root",
      },
      {
        path: "/etc/systemd/system/tvd-agent.service",
        content: AGENT_UNIT,
        permissions: "0644",
        owner: "root:root",
      },
    );
  for (const f of s.extraFiles ?? [])
    files.push({
      path: f.path,
      content: f.content,
      permissions: f.permissions ?? "0644",
      owner: f.owner ?? "root:root",
    });
  const user: Record<string, unknown> = { hostname: s.hostname, preserve_hostname: false };
  if (s.fqdn !== undefined) user.fqdn = s.fqdn;
  if (s.sshHostKey)
    user.ssh_keys = {
      ed25519_private: s.sshHostKey.privateKey,
      ed25519_public: s.sshHostKey.publicKey.trim(),
      ed25519_certificate: s.sshHostKey.certificate.trim(),
    };
  if (s.sshAuthorizedKeys.length) user.ssh_authorized_keys = s.sshAuthorizedKeys.map((k) => k.trim());
  if (files.length) user.write_files = files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  if (s.agent)
    user.runcmd = [
      ["systemctl", "daemon-reload"],
      ["systemctl", "enable", "--now", "tvd-agent.service"],
    ];
  return {
    "meta-data": { "instance-id": s.instanceId, "local-hostname": s.hostname },
    "user-data": user,
    "network-config": { version: 2, ethernets: { [iface]: ethernet } },
  };
}

function seedInert(v: Record<string, unknown>, run: number, deferred: Deferred): string[] {
  const seed = memberSeedOf(v as Parameters<typeof memberSeedOf>[0]);
  const files = renderSeedFiles(seed);
  const meaning = seedMeaning(seed);
  const problems: string[] = [];
  if (!files["user-data"].startsWith("#cloud-config\n"))
    problems.push("user-data does not start with #cloud-config");
  for (const name of ["meta-data", "user-data", "network-config"] as const) {
    let parsed: unknown;
    try {
      parsed = yaml.load(files[name]);
    } catch (e) {
      problems.push(`${name} is not YAML: ${(e as Error).message}`);
      continue;
    }
    if (!isDeepStrictEqual(parsed, meaning[name]))
      problems.push(`${name} parses as ${show(parsed)}, meant ${show(meaning[name])}`);
    deferred.yamlDocs.push({ run, text: files[name], expected: meaning[name] });
  }
  return problems;
}

/** A certificate's subject as (short name, value) pairs, in order. */
function subjectOf(cert: forge.pki.Certificate): Array<[string, unknown]> {
  return cert.subject.attributes.map((a) => [String(a.shortName), a.value]);
}

/** The CA certificate of each TVD name, read back once per name. */
const authorities = new Map<string, string[]>();

function authorityInert(v: Record<string, unknown>, run: number, deferred: Deferred): string[] {
  const tvdName = String(v.tvdName);
  deferred.keyComments.push({ run, value: `${tvdName} TVD SSH CA` });
  let problems = authorities.get(tvdName);
  if (problems) return problems;
  const ca = createTvdCa({ tvdName, validityDays: Number(v.validityDays) });
  const cert = forge.pki.certificateFromPem(ca.certPem);
  const want: Array<[string, unknown]> = [
    ["CN", `${tvdName} TVD CA`],
    ["O", "pulumi-tvd"],
  ];
  problems = [];
  if (!isDeepStrictEqual(subjectOf(cert), want))
    problems.push(`the CA's subject reads ${show(subjectOf(cert))}`);
  if (!cert.isIssuer(cert)) problems.push("the CA certificate is not its own issuer");
  authorities.set(tvdName, problems);
  return problems;
}

/** The names a certificate is issued for, as node-forge reads them back. */
function namesIn(certPem: string): { subject: Array<[string, unknown]>; dns: unknown[]; ips: unknown[] } {
  const cert = forge.pki.certificateFromPem(certPem);
  const san =
    (
      cert.getExtension("subjectAltName") as {
        altNames?: Array<{ type: number; value?: string; ip?: string }>;
      }
    )?.altNames ?? [];
  return {
    subject: subjectOf(cert),
    dns: san.filter((n) => n.type === 2).map((n) => n.value),
    ips: san.filter((n) => n.type === 7).map((n) => n.ip),
  };
}

/** A member's certificate, issued and read back once per member name (names: see sanProblems). */
const members = new Map<string, string[]>();

function identityInert(v: Record<string, unknown>, run: number, deferred: Deferred): string[] {
  const hostnames = v.hostnames as string[];
  const ips = v.ipAddresses as string[];
  for (const value of hostnames) deferred.sans.push({ run, value, ip: false });
  for (const value of ips) deferred.sans.push({ run, value, ip: true });
  for (const p of [...hostnames, ...ips]) deferred.principals.push({ run, value: p });
  deferred.keyIds.push({ run, value: String(v.memberName) });
  const problems: string[] = [];
  try {
    publicKeyFingerprint(String(v.sshCaPublicKey));
  } catch (e) {
    problems.push(`the SSH CA key has no fingerprint: ${(e as Error).message}`);
  }
  const memberName = String(v.memberName);
  let issued = members.get(memberName);
  if (!issued) {
    const x509 = issueIdentityCertificate({
      caCertPem: String(v.caCertPem),
      caKeyPem: String(v.caKeyPem),
      commonName: memberName,
      dnsNames: hostnames,
      ipAddresses: ips,
      validityDays: Number(v.validityDays),
    });
    const read = namesIn(x509.certPem);
    issued = [];
    const want: Array<[string, unknown]> = [
      ["CN", memberName],
      ["O", "pulumi-tvd"],
    ];
    if (!isDeepStrictEqual(read.subject, want)) issued.push(`the subject reads ${show(read.subject)}`);
    if (!isDeepStrictEqual(read.dns, hostnames))
      issued.push(`the DNS names read ${show(read.dns)}, issued for ${show(hostnames)}`);
    if (!isDeepStrictEqual(read.ips, ips))
      issued.push(`the IP addresses read ${show(read.ips)}, issued for ${show(ips)}`);
    members.set(memberName, issued);
  }
  return [...problems, ...issued];
}

/**
 * The EK and AK certificates for a member name: each subject reads back as exactly
 * "<memberName> EK" / "<memberName> AK" and O=pulumi-tvd. (The guest's name reaches the dom0 only
 * as one quoted argument of AGENT_EXCHANGE, which the shell check covers.)
 */
function tpmCertificatesInert(v: Record<string, unknown>): string[] {
  // The CA's own public key stands for the member's EK and AK: the subject is under test, not the key.
  const tpmKeyPem = createPublicKey(String(v.caKeyPem)).export({ type: "spki", format: "pem" }).toString();
  const memberName = String(v.memberName);
  const problems: string[] = [];
  for (const purpose of ["ek", "ak"] as const) {
    const cert = issueTpmKeyCertificate({
      caCertPem: String(v.caCertPem),
      caKeyPem: String(v.caKeyPem),
      commonName: `${memberName} ${purpose.toUpperCase()}`,
      publicKeyPem: tpmKeyPem,
      purpose,
      validityDays: Number(v.validityDays),
    });
    const want: Array<[string, unknown]> = [
      ["CN", `${memberName} ${purpose.toUpperCase()}`],
      ["O", "pulumi-tvd"],
    ];
    const read = namesIn(cert.certPem);
    if (!isDeepStrictEqual(read.subject, want))
      problems.push(`the ${purpose} subject reads ${show(read.subject)}`);
  }
  return problems;
}

/** A Dom0 over a session that records each argv and answers with nothing: what would be sent. */
function recordingDom0(): { dom0: Dom0; sent: string[][] } {
  const sent: string[][] = [];
  const session = {
    endpoint: "root@recording:22",
    run: async (argv: readonly string[]) => {
      sent.push([...argv]);
      return { stdout: "", stderr: "", exitCode: 0 };
    },
    check: async (argv: readonly string[]) => {
      sent.push([...argv]);
      return { stdout: "", stderr: "", exitCode: 0 };
    },
  };
  return { dom0: new (Dom0 as unknown as new (s: unknown) => Dom0)(session), sent };
}

/** Each value travels as one whole argument of what the dom0 is sent. */
function carried(sent: readonly string[][], values: readonly string[]): string[] {
  return values
    .filter((value) => !sent.some((argv) => argv.includes(value)))
    .map((value) => `${show(value)} is not one whole argument of what is sent: ${show(sent)}`);
}

async function networkInert(v: Record<string, unknown>): Promise<string[]> {
  const { dom0, sent } = recordingDom0();
  const n = v as unknown as Parameters<Dom0["ensureVxlanBridge"]>[0];
  await dom0.ensureVxlanBridge(n);
  return carried(sent, [n.bridge, n.localIp, ...n.peers]);
}

async function factsInert(v: Record<string, unknown>): Promise<string[]> {
  const { dom0, sent } = recordingDom0();
  await dom0.probeFacts(String(v.xenDataDir)).catch(() => undefined);
  return carried(sent, [String(v.xenDataDir)]);
}

// ---- work done for many values at once ------------------------------------------------------

/** A problem with one value, found after the generator ran: its run index names it. */
export interface LateProblem {
  readonly run: number;
  readonly value: string;
  readonly problem: string;
}

/** Runs `work` over `items`, at most `width` at a time. */
async function pool<T>(items: readonly T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) await work(items[next++]);
    }),
  );
}

function distinct<T extends { value: string }>(items: readonly T[]): T[] {
  const seen = new Set<string>();
  return items.filter((i) => !seen.has(i.value) && seen.add(i.value) !== undefined);
}

/** Subject alternative names, many per certificate, as node-forge reads them back. */
export async function sanProblems(deferred: Deferred, env: HostileEnv): Promise<LateProblem[]> {
  const problems: LateProblem[] = [];
  const all = [...new Map(deferred.sans.map((n) => [`${n.ip} ${n.value}`, n])).values()];
  for (let i = 0; i < all.length; i += 100) {
    const chunk = all.slice(i, i + 100);
    const dnsNames = chunk.filter((n) => !n.ip).map((n) => n.value);
    const ipAddresses = chunk.filter((n) => n.ip).map((n) => n.value);
    const x509 = issueIdentityCertificate({
      caCertPem: env.ca.certPem,
      caKeyPem: env.ca.keyPem,
      commonName: "hostile",
      dnsNames,
      ipAddresses,
      validityDays: 1,
    });
    const read = namesIn(x509.certPem);
    for (const n of chunk) {
      const list = n.ip ? read.ips : read.dns;
      if (!list.includes(n.value))
        problems.push({
          ...n,
          problem: `the certificate's ${n.ip ? "IP addresses" : "DNS names"} lack it: ${show(list)}`,
        });
    }
    if (!isDeepStrictEqual(read.dns, dnsNames) || !isDeepStrictEqual(read.ips, ipAddresses))
      problems.push({
        ...chunk[0],
        problem: `a certificate for ${show([dnsNames, ipAddresses])} reads ${show([read.dns, read.ips])}`,
      });
  }
  return problems;
}

/**
 * SSH certificates, as OpenSSH itself reads them: principals (many per certificate), key IDs
 * and key comments (one run of ssh-keygen each, each distinct value once, at most `limit` of
 * each per input; the CI slice samples, the whole sweep takes all).
 */
export async function sshProblems(
  deferred: Deferred,
  env: HostileEnv,
  limit = Infinity,
): Promise<LateProblem[]> {
  const problems: LateProblem[] = [];
  const hostKey = env.sshCa.publicKey;
  const principals = distinct(deferred.principals);
  for (let i = 0; i < principals.length; i += 200) {
    const chunk = principals.slice(i, i + 200);
    const cert = await signHostCertificate({
      caPrivateKey: env.sshCa.privateKey,
      hostPublicKey: hostKey,
      identity: "hostile",
      principals: chunk.map((p) => p.value),
      validityDays: 1,
    });
    const read = (await describeCertificate(cert.certificate)).principals;
    for (const p of chunk)
      if (!read.includes(p.value))
        problems.push({
          ...p,
          problem: `the SSH certificate's principals ${show(read)} lack ${show(p.value)}`,
        });
    if (read.length !== chunk.length)
      problems.push({
        ...chunk[0],
        problem: `${chunk.length} principals were signed, ${read.length} read back`,
      });
  }
  await pool(distinct(deferred.keyIds).slice(0, limit), 2, async (k) => {
    const cert = await signHostCertificate({
      caPrivateKey: env.sshCa.privateKey,
      hostPublicKey: hostKey,
      identity: k.value,
      principals: ["hostile"],
      validityDays: 1,
    });
    const keyId = (await describeCertificate(cert.certificate)).keyId;
    if (keyId !== k.value)
      problems.push({ ...k, problem: `the SSH certificate's key ID reads ${show(keyId)}` });
  });
  await pool(distinct(deferred.keyComments).slice(0, limit), 2, async (c) => {
    const key = await generateSshKeyPair(c.value);
    if (!key.publicKey.endsWith(` ${c.value}`))
      problems.push({ ...c, problem: `the SSH CA's public key line reads ${show(key.publicKey)}` });
  });
  return problems;
}

/** Runs `command` in a process and returns its stdout as bytes. */
export function runLocal(
  file: string,
  args: readonly string[],
  stdin?: string,
): Promise<{ stdout: Buffer; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: [stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on("data", (d: Buffer) => out.push(d));
    child.stderr?.on("data", (d: Buffer) => err.push(d));
    child.on("error", reject);
    child.on("close", (code) =>
      resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString(), code }),
    );
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

/**
 * Accepted values through a shell command line: `printf '%s\0' <values...>` quoted by the one
 * function every remote command is (joinArgv), run by `exec` (a local /bin/sh, or a dom0 over
 * SSH); each value must come back byte for byte, in its own argument. Chunks stay far below the
 * kernel's limit on one argument (sh -c takes the line as one).
 */
export async function shellProblems(
  deferred: Deferred,
  exec: (argv: readonly string[]) => Promise<string>,
): Promise<LateProblem[]> {
  const problems: LateProblem[] = [];
  const items = distinct(deferred.argv);
  for (let i = 0; i < items.length;) {
    const chunk: typeof items = [];
    let bytes = 0;
    while (i < items.length && (chunk.length === 0 || bytes + Buffer.byteLength(items[i].value) < 48_000)) {
      bytes += Buffer.byteLength(items[i].value) + 8;
      chunk.push(items[i++]);
    }
    const out = (await exec(["printf", "%s\\0", ...chunk.map((c) => c.value)])).split("\0");
    if (out.pop() !== "" || out.length !== chunk.length) {
      problems.push({ ...chunk[0], problem: `${chunk.length} arguments were sent, ${out.length} came back` });
      continue;
    }
    chunk.forEach((c, j) => {
      if (out[j] !== c.value) problems.push({ ...c, problem: `the shell passed on ${show(out[j])}` });
    });
  }
  return problems;
}

/**
 * cloud-init parses its seed with PyYAML (YAML 1.1): every document must read the same there.
 * `loader` is cloud-init's own SafeLoader, or CSafeLoader (libyaml's parser under the same
 * resolver, some fifteen times faster) for the CI slice. Each distinct document is parsed once.
 */
export async function pyyamlProblems(
  deferred: Deferred,
  loader: "SafeLoader" | "CSafeLoader",
): Promise<LateProblem[]> {
  const docs = [...new Map(deferred.yamlDocs.map((d) => [d.text, d])).values()];
  const script = `import json, sys, yaml\nprint(json.dumps([yaml.load(d, Loader=yaml.${loader}) for d in json.load(sys.stdin)]))`;
  const r = await runLocal("python3", ["-c", script], JSON.stringify(docs.map((d) => d.text)));
  if (r.code !== 0) throw new Error(`python3 could not parse the seeds: ${r.stderr}`);
  const parsed = JSON.parse(r.stdout.toString()) as unknown[];
  return docs.flatMap((d, i) =>
    isDeepStrictEqual(parsed[i], d.expected)
      ? []
      : [
          {
            run: d.run,
            value: d.text,
            problem: `PyYAML reads ${show(parsed[i])}, meant ${show(d.expected)}`,
          },
        ],
  );
}

/** Whether python3 with PyYAML (what cloud-init parses with) is on this machine. */
export async function havePyyaml(): Promise<boolean> {
  return runLocal("python3", ["-c", "import yaml; yaml.CSafeLoader"]).then(
    (r) => r.code === 0,
    () => false,
  );
}

/** What a test file runs: the seed, the scope, how many values per input, which inputs. */
export function hostilePlan(runs: { readonly ci: number; readonly full: number }) {
  const replay = replayFromEnv();
  const scope = reliabilityScope();
  return {
    replay,
    scope,
    runs: Number(process.env.HOSTILE_RUNS) || runs[scope],
    inputs: HOSTILE_INPUTS.filter((i) => !replay.only || inputId(i) === replay.only),
    /** Whether `tried` inputs are the measurement (not a replay of one input or one value). */
    measured: (tried: number) => !replay.only && !replay.path && tried === HOSTILE_INPUTS.length,
  };
}

/** Counts the provider's own connections to a dom0 (and refuses them): a test sends nothing that way. */
export function refuseDom0Connections(why: string): { readonly count: number } {
  const seen = { count: 0 };
  jest.spyOn(Dom0, "connect").mockImplementation(async () => {
    seen.count++;
    throw new Error(why);
  });
  return seen;
}

// ---- one input's run -------------------------------------------------------------------------

/** What one input's run tried: the counts, the work left for many values at once, the verdicts. */
export interface InputRun {
  readonly counts: InputCounts;
  readonly deferred: Deferred;
  readonly accepted: ReadonlySet<string>;
  readonly rejected: ReadonlySet<string>;
}

/**
 * fast-check makes `runs` values for `input` (seeded by seedFor; `replay.path` replays one) and
 * each is tried; the first that breaks a rule fails the run, with the seed, fast-check's path and
 * how to replay it. No shrinking: the value reported is the one generated, the counts exact.
 */
export async function generate(
  input: HostileInput,
  env: HostileEnv,
  replay: Replay,
  runs: number,
): Promise<InputRun> {
  const counts = newCounts(input, replay.seed);
  const deferred = newDeferred();
  // A value generated again did the same before: counted again, not tried again.
  const outcomes = new Map<string, Outcome>();
  let run = replay.path ? Number(replay.path.split(":")[0]) : 0;
  const details = await fc.check(
    fc.asyncProperty(valuesFor(input), async (value) => {
      const o = outcomes.get(value) ?? (await tryValue(input, value, env, run, deferred));
      outcomes.set(value, o);
      run++;
      count(counts, o);
      const problems = [...o.badRejection, ...o.notInert];
      if (problems.length) throw new Error(`${o.verdict}, but:\n  ${problems.join("\n  ")}`);
    }),
    {
      seed: seedFor(replay.seed, input),
      numRuns: runs,
      path: replay.path,
      verbose: fc.VerbosityLevel.Verbose,
      endOnFailure: true,
    },
  );
  if (details.failed)
    throw new Error(
      `replay: ${replayHint(input, replay.seed, details.counterexamplePath ?? "")}\n${fc.defaultReportMessage(details)}\n` +
        `Cause: ${(details.errorInstance as Error | undefined)?.message}`,
    );
  const of = (v: Verdict) =>
    new Set([...outcomes].filter(([, o]) => o.verdict === v).map(([value]) => value));
  return { counts, deferred, accepted: of("accepted"), rejected: of("rejected") };
}

/**
 * The certificates' names are what is tried, not their keys: RSA key pairs are made twice and
 * then reused (each new 2048-bit pair takes some 40 ms). Spies on the module itself: an
 * `import * as` copy cannot be spied on. Returns the spy, for jest.restoreAllMocks.
 */
export function reuseRsaKeys(): jest.SpyInstance {
  const crypto = jest.requireActual<typeof import("node:crypto")>("node:crypto");
  const generateKeyPair = crypto.generateKeyPairSync as unknown as (
    type: string,
    options: unknown,
  ) => unknown;
  const made: unknown[] = [];
  let n = 0;
  return jest.spyOn(crypto, "generateKeyPairSync").mockImplementation(((type: string, options: unknown) => {
    if (type !== "rsa") return generateKeyPair(type, options);
    if (made.length < 2) made.push(generateKeyPair(type, options));
    return made[n++ % made.length];
  }) as unknown as typeof crypto.generateKeyPairSync);
}

// ---- counting -------------------------------------------------------------------------------

export interface InputCounts {
  input: string;
  /** fast-check's seed for this input (see seedFor). */
  seed: number;
  tried: number;
  rejected: number;
  acceptedInert: number;
  acceptedNotInert: number;
  rejectionsWithoutPropertyOrFix: number;
  /** Construct values a declared resource's check refused, not the constructor. */
  rejectedByResource?: number;
}

export function newCounts(input: HostileInput, seed: number): InputCounts {
  return {
    input: inputId(input),
    seed: seedFor(seed, input),
    tried: 0,
    rejected: 0,
    acceptedInert: 0,
    acceptedNotInert: 0,
    rejectionsWithoutPropertyOrFix: 0,
    ...(input.landsIn ? { rejectedByResource: 0 } : {}),
  };
}

export function count(c: InputCounts, o: Outcome): void {
  c.tried++;
  if (o.verdict === "rejected") {
    c.rejected++;
    if (o.badRejection.length) c.rejectionsWithoutPropertyOrFix++;
    if (o.rejectedByResource && c.rejectedByResource !== undefined) c.rejectedByResource++;
  } else if (o.notInert.length) c.acceptedNotInert++;
  else c.acceptedInert++;
}

/** A value found wrong after the run moves from inert to not inert (once per value). */
export function recount(c: InputCounts, late: readonly LateProblem[]): void {
  const runs = new Set(late.map((p) => p.run)).size;
  c.acceptedInert -= runs;
  c.acceptedNotInert += runs;
}

export function totals(all: readonly InputCounts[]): Record<string, number> {
  const sum = (k: keyof InputCounts) => all.reduce((s, c) => s + Number(c[k] ?? 0), 0);
  return {
    valuesTried: sum("tried"),
    rejected: sum("rejected"),
    acceptedInert: sum("acceptedInert"),
    acceptedNotInert: sum("acceptedNotInert"),
    rejectionsWithoutPropertyOrFix: sum("rejectionsWithoutPropertyOrFix"),
    inputsCovered: all.length,
  };
}

/** How to see one value again: the run's seed, the input, and fast-check's path of the value. */
export function replayHint(input: HostileInput, seed: number, path: string | number): string {
  return `HOSTILE_SEED=${seed} HOSTILE_INPUT=${JSON.stringify(inputId(input))} HOSTILE_PATH=${path}`;
}

export function describeLate(input: HostileInput, seed: number, late: readonly LateProblem[]): string {
  return late
    .slice(0, 20)
    .map(
      (p) =>
        `${show(p.value)}: ${p.problem}\n    fast-check { seed: ${seedFor(seed, input)}, path: "${p.run}" }; replay: ${replayHint(input, seed, p.run)}`,
    )
    .join("\n");
}

/**
 * Writes this test's part of section "hostile": the pure test's figures (every check and
 * rendering) and the lab test's (what went through a dom0's sshd, figures named sshd*, details
 * under `sshd`). Each replaces its own part and keeps the other's (the two run one after another).
 */
export function recordHostile(
  part: "pure" | "sshd",
  scope: "ci" | "full",
  figures: Record<string, number>,
  details: Record<string, unknown>,
): void {
  const existing = readReliability().sections.hostile;
  const theirs = ([k]: [string, number]) => k.startsWith("sshd") === (part === "pure");
  const kept = Object.fromEntries(Object.entries(existing?.figures ?? {}).filter(theirs));
  const before = (existing?.details ?? {}) as Record<string, unknown>;
  recordReliability(
    "hostile",
    scope,
    { ...kept, ...figures },
    part === "pure"
      ? { ...details, ...(before.sshd ? { sshd: before.sshd } : {}) }
      : { ...before, sshd: details },
  );
}
