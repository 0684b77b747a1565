import * as pulumi from "@pulumi/pulumi";
import { Guest } from "../provider/resources/guest/resource";
import {
  BaselineError,
  PV_GRUB_DEFAULT_MENU_LST,
  pvGrubBaseline,
  type PcrBaseline,
} from "../provider/resources/memberAttestation/baseline";
import { MemberAttestation } from "../provider/resources/memberAttestation/resource";
import { MemberIdentity } from "../provider/resources/memberIdentity/resource";
import { MemberPort } from "../provider/resources/memberPort/resource";
import { TvdRevocationList } from "../provider/resources/revocationList/resource";
import { SeedImage } from "../provider/resources/seedImage/resource";
import { TvdAuthority } from "../provider/resources/tvdAuthority/resource";
import { TvdNetwork } from "../provider/resources/tvdNetwork/resource";
import { Vtpm } from "../provider/resources/vtpm/resource";
import { VtpmIdentity } from "../provider/resources/vtpmIdentity/resource";
import { trustStateOf, tvdDiagram } from "./diagram";
import { planMembers, portNameFor, TvdPlanError, vniFor, type MemberPlan, type TvdMemberSpec } from "./plan";
import type { XenHost } from "./xenHost";

/** What every member's guest is built from; members may override memory and vCPUs. */
export interface TvdGuestTemplate {
  /** The template image on every host the TVD spans; each member gets a qcow2 overlay of it. */
  readonly baseImage: string;
  /** @default "raw" */
  readonly baseImageFormat?: "raw" | "qcow2";
  /** @default 256 */
  readonly memoryMiB?: number;
  /** @default 1 */
  readonly vcpus?: number;
  /** @default "direct" */
  readonly bootLoader?: "direct" | "pvgrub";
  /** @default - required for "direct" */
  readonly kernel?: string;
  /** @default - none */
  readonly ramdisk?: string;
  /** @default - none */
  readonly cmdline?: string;
  /** The size of each member's vTPM image (its keys and NVRAM), MiB. @default 8 (the Vtpm default) */
  readonly vtpmImageSizeMiB?: number;
}

/**
 * Measured boot and attestation (issue 16): every member boots through pv-grub from its own disk
 * (the template image must hold menu.lst, the kernel and the initrd), pv-grub measures what it
 * boots into the member's vTPM, and each member is admitted only once its vTPM proves, by a quote
 * with its certified AK, the baseline computed here from the files declared.
 */
export interface TvdMeasuredBootProps {
  /**
   * The kernel file the template image boots, as stored there (gzip or not): a path where Pulumi
   * runs, the same file baked into the image. PCR 4 is computed from its bytes.
   */
  readonly kernel: string;
  /** The initrd file, likewise. @default - none: the menu.lst entry has no initrd line */
  readonly initrd?: string;
  /** The kernel's arguments exactly as the menu.lst entry's kernel line gives them after the file name. */
  readonly cmdline: string;
  /** The menu.lst pv-grub reads (its `extra=`). @default "(hd0,0)/boot/grub/menu.lst" (pv-grub's own default) */
  readonly menuLst?: string;
  /**
   * The PCR bank quoted. TPM 1.2 has sha1 alone; choose sha256 only when every member's vTPM is a
   * TPM 2.0.
   * @default "sha1"
   */
  readonly bank?: "sha1" | "sha256";
  /** Further PCRs pinned by value: index to hex. @default - none */
  readonly pcrs?: Readonly<Record<number, string>>;
  /** How long each member's attestation waits for its agent to quote. @default 60 */
  readonly quoteTimeoutSec?: number;
}

export interface TvdNetworkProps {
  /** The TVD's own IPv4 network; members get addresses in it. @default "10.50.0.0/24" */
  readonly subnet?: string;
  /** The VXLAN id linking the TVD's hosts. @default - derived from the TVD's name */
  readonly vni?: number;
  /** @default - none */
  readonly gateway?: string;
  /** @default - none */
  readonly dns?: string[];
}

/** A member given in a list: its name, and its host as the XenHost itself or its construct name. */
export interface TvdMemberProps extends Omit<TvdMemberSpec, "host"> {
  readonly host?: XenHost | string;
}

export interface TrustedVirtualDomainProps {
  /** The hosts the TVD spans; each gets the TVD's bridge and a VXLAN link to the others. */
  readonly hosts: readonly XenHost[];
  readonly template: TvdGuestTemplate;
  /**
   * How many members, spread over the hosts in turn (named `<tvd>-01`, `<tvd>-02`...), or the
   * members themselves (named `<tvd>-<name>`), with per-member overrides.
   */
  readonly members: number | readonly TvdMemberProps[];
  /** @default - "10.50.0.0/24", a VXLAN id derived from the name */
  readonly network?: TvdNetworkProps;
  /** SSH public keys allowed to log in to every member. @default [] */
  readonly authorizedKeys?: readonly string[];
  /**
   * Change it (any new value) to reissue every member's certificates in one `up`; guests and
   * vTPMs are kept.
   * @default "0"
   */
  readonly rotation?: pulumi.Input<string>;
  /** @default 365 */
  readonly certificateValidityDays?: number;
  /**
   * Whether the system owns every member's vTPM: each seed carries the member agent, which takes
   * ownership with auth the TVD holds, and a VtpmIdentity per member certifies its EK and AK
   * under the TVD's CA once credential activation proved them. Turn it off only where nothing
   * behind the members' vTPMs speaks TPM (stand-in stub domains).
   * @default true
   */
  readonly vtpmIdentity?: boolean;
  /** How long each member's VtpmIdentity waits for its agent's first report. @default 180 */
  readonly agentTimeoutSec?: number;
  /**
   * Accept members whose vTPM now presents a new identity (a new EK: the vTPM was wiped or reset)
   * and certify it; without it such a member is drift that `up` refuses. Set it for one `up`,
   * then back.
   * @default false
   */
  readonly allowStateReset?: pulumi.Input<boolean>;
  /**
   * Members boot through pv-grub and are admitted by attestation against the baseline computed
   * from these files (see TvdMeasuredBootProps). Needs vtpmIdentity; the template then names no
   * kernel, ramdisk, cmdline or bootLoader.
   * @default - none: members boot as the template says and are not attested
   */
  readonly measuredBoot?: TvdMeasuredBootProps;
}

/** What a user wants to see of each member. */
export interface TvdMemberOutputs {
  readonly host: string;
  readonly domain: string;
  readonly vtpmUuid: string;
  readonly ip: string;
  readonly sshHostKeyFingerprint: string;
  readonly x509Serial: string;
  readonly sshCertSerial: string;
  /** The vTPM's identity, when the TVD owns its members' vTPMs (vtpmIdentity). */
  readonly tpm?: {
    readonly version: "1.2" | "2.0";
    readonly ekFingerprint: string;
    readonly akFingerprint: string;
    readonly ekCertSerial: string;
    readonly akCertSerial: string;
  };
  /** Its admission by attestation, with measuredBoot: the quote proved the baseline. */
  readonly attestation?: {
    readonly attested: boolean;
    /** SHA-256 over the proved PCR values in ascending PCR order, hex. */
    readonly pcrDigest: string;
  };
}

/** The member resources one member is made of, for programs that want more than the outputs. */
export interface TvdMember {
  readonly plan: MemberPlan;
  readonly vtpm: Vtpm;
  readonly identity: MemberIdentity;
  readonly seed: SeedImage;
  readonly guest: Guest;
  /** Its vTPM's certified identity; absent with vtpmIdentity: false. */
  readonly vtpmIdentity?: VtpmIdentity;
  /** Its admission by attestation; present with measuredBoot. */
  readonly attestation?: MemberAttestation;
  /**
   * Its port on the TVD bridge, moved there from the holding bridge once its attestation passed;
   * present with measuredBoot.
   */
  readonly port?: MemberPort;
}

const TVD_NAME = /^[a-z][a-z0-9]{0,10}$/;
/** What each member's vtpm-stubdom takes of its host's memory (the Vtpm default). */
const VTPM_MEMORY_MIB = 8;

/**
 * A Trusted Virtual Domain: guests on several Xen hosts that form one unit under one trust
 * anchor. Each member gets its own vTPM and guest (an overlay of the template), an SSH host key
 * with a certificate from the TVD's SSH CA, an X.509 identity from the TVD's CA, and a cloud-init
 * seed that carries all of it into the guest before its first boot, with the member agent that
 * takes ownership of the member's vTPM; the TVD's CA then certifies each vTPM's EK and AK. The TVD's guests share a
 * bridge per host, linked between hosts by the TVD's own VXLAN and by nothing else.
 */
export class TrustedVirtualDomain extends pulumi.ComponentResource {
  readonly tvdName: string;
  readonly authority: TvdAuthority;
  readonly networks: Readonly<Record<string, TvdNetwork>>;
  readonly memberResources: Readonly<Record<string, TvdMember>>;
  /**
   * With measuredBoot: the TVD's CRL, revoking every member certificate its CA no longer stands
   * behind (a member removed, a certificate reissued); each admitted member holds it.
   */
  readonly revocations?: TvdRevocationList;
  /** Per member: host, domain, vTPM UUID, address, SSH host key fingerprint, certificate serials. */
  readonly members: pulumi.Output<Record<string, TvdMemberOutputs>>;
  /** A table of the members, for `pulumi up` to print. */
  readonly summary: pulumi.Output<string>;
  /**
   * A picture of the TVD as Mermaid flowchart text: its hosts, the members on each (address, EK
   * fingerprint once certified), the bridge per host, the VXLAN links, each member coloured by
   * its trust state.
   */
  readonly diagram: pulumi.Output<string>;
  /**
   * What every member must prove with measuredBoot: computed in the program from the files
   * declared, so a preview shows a changed kernel, initrd or command line as a changed baseline.
   */
  readonly baseline?: PcrBaseline;

  constructor(name: string, props: TrustedVirtualDomainProps, opts?: pulumi.ComponentResourceOptions) {
    super("pulumi-tvd:index:TrustedVirtualDomain", name, {}, opts);
    if (!TVD_NAME.test(name)) {
      throw new TvdPlanError(name, [
        "the name must be 1 to 11 lowercase letters and digits, starting with a letter (it names the TVD's bridge, tvd-<name>, at most 15 characters)",
      ]);
    }
    const vtpmImageSizeMiB = props.template.vtpmImageSizeMiB;
    if (
      vtpmImageSizeMiB !== undefined &&
      !(Number.isInteger(vtpmImageSizeMiB) && vtpmImageSizeMiB >= 1 && vtpmImageSizeMiB <= 1024)
    ) {
      throw new TvdPlanError(name, [
        `template.vtpmImageSizeMiB ${JSON.stringify(vtpmImageSizeMiB)} must be a whole number of MiB from 1 to 1024; leave it out for 8`,
      ]);
    }
    const measuredBoot = props.measuredBoot;
    this.baseline = measuredBoot ? measuredBootBaseline(name, props) : undefined;
    const hostByName = new Map(props.hosts.map((h) => [h.hostName, h]));
    const memoryMiB = props.template.memoryMiB ?? 256;
    const plans = planMembers({
      tvd: name,
      hosts: props.hosts.map((h) => ({
        name: h.hostName,
        guestMemoryMiB: h.guestMemoryMiB,
        reservedMiB: h.reservedMiB,
      })),
      members:
        typeof props.members === "number"
          ? props.members
          : props.members.map((m) => ({
              ...m,
              host: typeof m.host === "string" ? m.host : m.host?.hostName,
            })),
      memoryMiB,
      vcpus: props.template.vcpus ?? 1,
      subnet: props.network?.subnet ?? "10.50.0.0/24",
      vtpmMemoryMiB: VTPM_MEMORY_MIB,
    });
    for (const plan of plans) hostByName.get(plan.host)!.reserve(plan.memoryMiB + VTPM_MEMORY_MIB);

    this.tvdName = name;
    const bridge = `tvd-${name}`;
    // With measuredBoot, members' vifs come up on a holding bridge that forwards nothing, and each
    // member's port joins the TVD bridge only once its attestation passed (MemberPort).
    const holdingBridge = measuredBoot ? `tvh-${name}` : undefined;
    const vni = props.network?.vni ?? vniFor(name);
    const rotation = props.rotation ?? "0";
    const ownsVtpms = props.vtpmIdentity ?? true;
    this.authority = new TvdAuthority(`${name}-authority`, { tvdName: name }, { parent: this });

    const networks: Record<string, TvdNetwork> = {};
    for (const host of props.hosts) {
      networks[host.hostName] = new TvdNetwork(
        `${name}-net-${host.hostName}`,
        {
          connection: host.connection,
          bridge,
          holdingBridge,
          vni,
          localIp: host.tunnelIp,
          peers: props.hosts.filter((h) => h !== host).map((h) => h.tunnelIp),
        },
        { parent: this },
      );
    }
    this.networks = networks;

    const members: Record<string, TvdMember> = {};
    for (const plan of plans) {
      const host = hostByName.get(plan.host)!;
      const connection = host.connection;
      const address = plan.ip.split("/")[0];
      const vtpm = new Vtpm(
        plan.vtpmDomain,
        { connection, name: plan.vtpmDomain, manager: host.manager, imageSizeMiB: vtpmImageSizeMiB },
        { parent: this },
      );
      const identity = new MemberIdentity(
        `${plan.domain}-identity`,
        {
          authority: this.authority,
          memberName: plan.domain,
          hostnames: [plan.domain, `${plan.domain}.${name}.tvd`],
          ipAddresses: [address],
          rotation,
          validityDays: props.certificateValidityDays,
        },
        { parent: this },
      );
      const seed = new SeedImage(
        `${plan.domain}-seed`,
        {
          connection,
          name: plan.domain,
          seed: {
            hostname: plan.domain,
            fqdn: `${plan.domain}.${name}.tvd`,
            network: {
              kind: "static",
              address: plan.ip,
              gateway: props.network?.gateway,
              dns: props.network?.dns ? [...props.network.dns] : undefined,
            },
            macAddress: plan.mac,
            sshHostKey: {
              privateKey: identity.sshHostPrivateKey,
              publicKey: identity.sshHostPublicKey,
              certificate: identity.sshHostCertificate,
            },
            sshAuthorizedKeys: [...(props.authorizedKeys ?? [])],
            sshCaPublicKeys: [this.authority.sshCaPublicKey],
            x509: {
              certPem: identity.x509CertPem,
              keyPem: identity.x509KeyPem,
              caCertPem: this.authority.caCertPem,
            },
            agent: ownsVtpms ? { ownerAuth: identity.tpmOwnerAuth, srkAuth: identity.tpmSrkAuth } : undefined,
          },
        },
        { parent: this },
      );
      const guest = new Guest(
        plan.domain,
        {
          connection,
          name: plan.domain,
          baseImage: props.template.baseImage,
          baseImageFormat: props.template.baseImageFormat,
          memoryMiB: plan.memoryMiB,
          vcpus: plan.vcpus,
          // pv-grub (the Guest's default kernel for it) reads menu.lst, given as its extra=.
          ...(measuredBoot
            ? { bootLoader: "pvgrub", cmdline: measuredBoot.menuLst ?? PV_GRUB_DEFAULT_MENU_LST }
            : {
                bootLoader: props.template.bootLoader,
                kernel: props.template.kernel,
                ramdisk: props.template.ramdisk,
                cmdline: props.template.cmdline,
              }),
          vifs: [
            holdingBridge
              ? { bridge: holdingBridge, mac: plan.mac, ip: plan.ip, vifname: portNameFor(plan.domain) }
              : { bridge, mac: plan.mac, ip: plan.ip },
          ],
          vtpm,
          // The seed is the guest's second disk: cloud-init's NoCloud source finds it by label.
          extraDisks: [{ target: seed.path, vdev: "xvdb", format: "raw", access: "ro" }],
        },
        { parent: this, dependsOn: [networks[plan.host]] },
      );
      const vtpmIdentity = ownsVtpms
        ? new VtpmIdentity(
            `${plan.domain}-vtpm-identity`,
            {
              connection,
              guest,
              authority: this.authority,
              memberName: plan.domain,
              rotation,
              validityDays: props.certificateValidityDays,
              readyTimeoutSec: props.agentTimeoutSec,
              allowStateReset: props.allowStateReset,
            },
            { parent: this },
          )
        : undefined;
      const attestation =
        vtpmIdentity && this.baseline
          ? new MemberAttestation(
              `${plan.domain}-attestation`,
              {
                connection,
                identity: vtpmIdentity,
                baseline: this.baseline,
                // A member that fails its attestation later (a PCR changed) is cut off at once.
                port: holdingBridge ? { name: portNameFor(plan.domain), bridge, holdingBridge } : undefined,
                readyTimeoutSec: measuredBoot?.quoteTimeoutSec,
              },
              { parent: this, dependsOn: [networks[plan.host]] },
            )
          : undefined;
      members[plan.name] = { plan, vtpm, identity, seed, guest, vtpmIdentity, attestation };
    }
    if (holdingBridge) {
      // Every serial of the certificates the members hold now (X.509 identity, EK and AK
      // certificates); one gone from the list (a member removed, a certificate reissued) is
      // revoked in the next CRL, which every admitted member then holds. A member failing its
      // attestation has its certificates on hold until it proves its baseline again.
      this.revocations = new TvdRevocationList(
        `${name}-crl`,
        {
          authority: this.authority,
          memberSerials: pulumi
            .all(Object.values(members).map(certificateSerialsOf))
            .apply((serials) => serials.flat()),
          heldSerials: pulumi
            .all(
              Object.values(members).map((m) =>
                pulumi
                  .all([m.attestation?.attested ?? true, certificateSerialsOf(m)])
                  .apply(([attested, serials]) => (attested === false ? serials : [])),
              ),
            )
            .apply((serials) => serials.flat()),
          validityDays: props.certificateValidityDays,
        },
        { parent: this },
      );
      for (const m of Object.values(members)) {
        if (!m.attestation) continue;
        const port = new MemberPort(
          `${m.plan.domain}-port`,
          {
            connection: hostByName.get(m.plan.host)!.connection,
            port: portNameFor(m.plan.domain),
            domain: m.plan.domain,
            bridge,
            holdingBridge,
            // Known once the attestation ran: the port waits for it, and is admitted only when it
            // passed; otherwise it stays held and the up fails with the attestation's refusal.
            admission: pulumi
              .all([m.attestation.attested, m.attestation.pcrDigest])
              .apply(([attested, digest]) => (attested ? digest : undefined)),
            // Each new attestation places the port again: one held by a failed attestation rejoins.
            attestedAt: m.attestation.attestedAt,
            admitted: m.attestation.attested,
            refusal: m.attestation.refusal,
            crlPem: this.revocations.crlPem,
          },
          { parent: this, dependsOn: [m.guest, networks[m.plan.host]] },
        );
        members[m.plan.name] = { ...m, port };
      }
    }
    this.memberResources = members;

    this.members = pulumi.all(
      Object.fromEntries(
        Object.values(members).map((m) => [
          m.plan.domain,
          pulumi
            .all([
              m.vtpm.uuid,
              m.identity.sshHostKeyFingerprint,
              m.identity.x509Serial,
              m.identity.sshCertSerial,
              tpmOutputsOf(m.vtpmIdentity),
              attestationOutputsOf(m.attestation),
            ])
            .apply(([vtpmUuid, sshHostKeyFingerprint, x509Serial, sshCertSerial, tpm, attestation]) => ({
              host: m.plan.host,
              domain: m.plan.domain,
              vtpmUuid,
              ip: m.plan.ip,
              sshHostKeyFingerprint,
              x509Serial,
              sshCertSerial,
              ...(tpm ? { tpm } : {}),
              ...(attestation ? { attestation } : {}),
            })),
        ]),
      ),
    ) as pulumi.Output<Record<string, TvdMemberOutputs>>;
    this.summary = this.members.apply((m) => renderSummary(name, vni, Object.values(m)));
    this.diagram = this.members.apply((m) =>
      tvdDiagram({
        tvd: name,
        bridge,
        vni,
        hosts: props.hosts.map((h) => ({ name: h.hostName, tunnelIp: h.tunnelIp })),
        members: Object.values(m).map((o) => ({
          domain: o.domain,
          host: o.host,
          ip: o.ip,
          trust: trustStateOf(o),
          ekFingerprint: o.tpm?.ekFingerprint,
        })),
      }),
    );
    this.registerOutputs({ members: this.members, summary: this.summary, diagram: this.diagram });
  }
}

/**
 * The baseline of a TVD with measuredBoot, computed from the files declared; what cannot work
 * with it (no vtpmIdentity, a template that names its own kernel) is refused here, naming the fix.
 */
function measuredBootBaseline(tvd: string, props: TrustedVirtualDomainProps): PcrBaseline {
  const mb = props.measuredBoot!;
  const problems: string[] = [];
  if (props.vtpmIdentity === false)
    problems.push(
      "measuredBoot needs vtpmIdentity: only a quote by a certified AK admits a member; remove vtpmIdentity: false or measuredBoot",
    );
  for (const key of ["bootLoader", "kernel", "ramdisk", "cmdline"] as const) {
    const value = props.template[key];
    if (value !== undefined && !(key === "bootLoader" && value === "pvgrub"))
      problems.push(
        `template.${key} ${JSON.stringify(value)} cannot be set with measuredBoot: members boot through pv-grub the ` +
          `kernel, initrd and cmdline their image's menu.lst names (declare them in measuredBoot); remove template.${key}`,
      );
  }
  const menuLst = mb.menuLst;
  if (menuLst !== undefined && !/^\(hd\d+(,\d+)?\)\/[A-Za-z0-9_./+-]+$/.test(menuLst))
    problems.push(
      `measuredBoot.menuLst ${JSON.stringify(menuLst)} is not a GRUB path such as "(hd0,0)/boot/grub/menu.lst"; fix measuredBoot.menuLst`,
    );
  const timeout = mb.quoteTimeoutSec;
  if (timeout !== undefined && !(Number.isInteger(timeout) && timeout >= 1 && timeout <= 3600))
    problems.push(
      `measuredBoot.quoteTimeoutSec ${JSON.stringify(timeout)} must be a whole number of seconds from 1 to 3600; leave it out for 60`,
    );
  let baseline: PcrBaseline | undefined;
  try {
    baseline = pvGrubBaseline(
      { kernel: mb.kernel, initrd: mb.initrd, cmdline: mb.cmdline, bank: mb.bank, pcrs: mb.pcrs },
      "measuredBoot",
    );
  } catch (e) {
    if (!(e instanceof BaselineError)) throw e;
    problems.push(...e.problems);
  }
  if (problems.length || !baseline) throw new TvdPlanError(tvd, problems);
  return baseline;
}

function attestationOutputsOf(
  attestation: MemberAttestation | undefined,
): pulumi.Output<TvdMemberOutputs["attestation"]> {
  if (!attestation) return pulumi.output(undefined);
  return pulumi
    .all([attestation.attested, attestation.pcrDigest])
    .apply(([attested, pcrDigest]) => ({ attested, pcrDigest }));
}

/** The serials of every certificate the TVD's CA issued a member: X.509, and EK and AK when owned. */
function certificateSerialsOf(m: TvdMember): pulumi.Output<string[]> {
  return pulumi
    .all([m.identity.x509Serial, m.vtpmIdentity?.ekCertSerial, m.vtpmIdentity?.akCertSerial])
    .apply((serials) => serials.filter((s): s is string => typeof s === "string" && s.length > 0));
}

function tpmOutputsOf(identity: VtpmIdentity | undefined): pulumi.Output<TvdMemberOutputs["tpm"]> {
  if (!identity) return pulumi.output(undefined);
  return pulumi
    .all([
      identity.tpmVersion,
      identity.ekFingerprint,
      identity.akFingerprint,
      identity.ekCertSerial,
      identity.akCertSerial,
    ])
    .apply(([version, ekFingerprint, akFingerprint, ekCertSerial, akCertSerial]) => ({
      version,
      ekFingerprint,
      akFingerprint,
      ekCertSerial,
      akCertSerial,
    }));
}

/** A fingerprint (or a PCR digest, SHA-256 too) as the summary shows it: enough hex to tell keys apart at a glance. */
const shortFingerprint = (hex: string) => `sha256:${hex.slice(0, 16)}`;

/** The table `pulumi up` prints for a TVD. Pure. */
export function renderSummary(tvd: string, vni: number, members: readonly TvdMemberOutputs[]): string {
  const withTpm = members.some((m) => m.tpm);
  const attested = members.some((m) => m.attestation);
  const rows = [
    [
      "member",
      "host",
      "ip",
      "vTPM uuid",
      "ssh host key",
      "x509 serial",
      "ssh cert serial",
      ...(withTpm ? ["tpm", "EK", "AK", "EK cert serial", "AK cert serial"] : []),
      ...(attested ? ["attested", "PCR digest"] : []),
    ],
    ...[...members]
      .sort((a, b) => a.domain.localeCompare(b.domain))
      .map((m) => [
        m.domain,
        m.host,
        m.ip,
        m.vtpmUuid,
        m.sshHostKeyFingerprint,
        m.x509Serial,
        m.sshCertSerial,
        ...(withTpm
          ? m.tpm
            ? [
                m.tpm.version,
                shortFingerprint(m.tpm.ekFingerprint),
                shortFingerprint(m.tpm.akFingerprint),
                m.tpm.ekCertSerial,
                m.tpm.akCertSerial,
              ]
            : ["-", "-", "-", "-", "-"]
          : []),
        ...(attested
          ? m.attestation
            ? m.attestation.attested
              ? ["yes", shortFingerprint(m.attestation.pcrDigest)]
              : ["no", "-"]
            : ["-", "-"]
          : []),
      ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) =>
    r
      .map((cell, i) => cell.padEnd(widths[i]))
      .join("  ")
      .trimEnd(),
  );
  return [`TVD ${tvd} (bridge tvd-${tvd}, VXLAN ${vni}): ${members.length} members`, ...lines].join("\n");
}
