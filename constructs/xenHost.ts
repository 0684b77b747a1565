import * as pulumi from "@pulumi/pulumi";
import type { DomainArgs, Inputs } from "../provider/inputs";
import { VtpmManager, type VtpmManagerArgs } from "../provider/resources/vtpmManager/resource";
import type { ConnectionArgs } from "../provider/transport/connection";

export interface XenHostProps {
  /** How to reach the dom0; kept as a secret. */
  readonly connection: pulumi.Input<Inputs<ConnectionArgs>>;
  /**
   * This host's address on the network that links the hosts of a TVD; each TVD's VXLAN runs
   * between these addresses.
   */
  readonly tunnelIp: string;
  /**
   * Memory this host offers to TVD guests and their vTPMs, MiB. TVDs are checked against it
   * when they are declared, before anything is deployed.
   */
  readonly guestMemoryMiB: number;
  /**
   * The host's vTPM manager, as for `VtpmManager` (connection is the host's).
   * @default - a manager named "vtpmmgr" with the VtpmManager defaults
   */
  readonly manager?: Partial<Omit<VtpmManagerArgs, keyof DomainArgs>> & { readonly name?: string };
}

const IPV4 = /^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)$/;
const unicast = (ip: string) => Number(ip.split(".")[0]) !== 0 && Number(ip.split(".")[0]) < 224;

/**
 * One dom0 and its vTPM manager, reusable by many Trusted Virtual Domains. The manager runs for
 * the host's whole life; TVDs place their guests and vTPMs on it.
 */
export class XenHost extends pulumi.ComponentResource {
  /** The construct's name; TVD members name their host with it. */
  readonly hostName: string;
  readonly connection: pulumi.Input<Inputs<ConnectionArgs>>;
  readonly tunnelIp: string;
  readonly guestMemoryMiB: number;
  readonly manager: VtpmManager;
  private reserved = 0;

  constructor(name: string, props: XenHostProps, opts?: pulumi.ComponentResourceOptions) {
    super("pulumi-tvd:index:XenHost", name, {}, opts);
    const problems: string[] = [];
    if (!IPV4.test(props.tunnelIp)) {
      problems.push(
        `tunnelIp ${JSON.stringify(props.tunnelIp)} is not an IPv4 address; give the host's address on the network that links TVD hosts`,
      );
    } else if (!unicast(props.tunnelIp)) {
      // Each TVD's VXLAN sends a copy of every frame to each peer: a peer must be one host.
      problems.push(
        `tunnelIp ${JSON.stringify(props.tunnelIp)} is not a unicast address (not 0.x.x.x, multicast or broadcast); give the host's address on the network that links TVD hosts`,
      );
    }
    if (!Number.isInteger(props.guestMemoryMiB) || props.guestMemoryMiB < 1) {
      problems.push(
        `guestMemoryMiB ${JSON.stringify(props.guestMemoryMiB)} must be a whole number of MiB >= 1: the memory this host offers to guests`,
      );
    }
    if (problems.length) throw new Error(`xen host ${JSON.stringify(name)}: ${problems.join("; ")}`);
    this.hostName = name;
    this.connection = props.connection;
    this.tunnelIp = props.tunnelIp;
    this.guestMemoryMiB = props.guestMemoryMiB;
    const { name: managerName, ...manager } = props.manager ?? {};
    this.manager = new VtpmManager(
      `${name}-vtpmmgr`,
      { ...manager, connection: props.connection, name: managerName ?? "vtpmmgr" },
      { parent: this },
    );
    this.registerOutputs({ manager: this.manager });
  }

  /** Memory TVDs declared so far have placed on this host, MiB. */
  get reservedMiB(): number {
    return this.reserved;
  }

  /** Called by a TVD once its members on this host passed validation. */
  reserve(mib: number): void {
    this.reserved += mib;
  }
}
