import * as pulumi from "@pulumi/pulumi";
import { TvdResource } from "../tvdResource";
import { SEED_SECRETS } from "./args";
import type { SeedAgent } from "../../cloudinit/agent";
import type { SeedExtraFile, SeedNetwork, SeedSshHostKey, SeedX509 } from "../../cloudinit/render";
import type { Inputs } from "../../inputs";
import type { ConnectionArgs } from "../../transport/connection";

export interface SeedImageSeedArgs {
  /**
   * cloud-init applies a seed once per instance id.
   * @default - "<name>-<hash of the seed>": every seed change is applied at the guest's next boot
   */
  readonly instanceId?: pulumi.Input<string>;
  readonly hostname: pulumi.Input<string>;
  /** @default - none */
  readonly fqdn?: pulumi.Input<string>;
  /** @default { kind: "dhcp" } */
  readonly network?: pulumi.Input<Inputs<SeedNetwork>>;
  /** The guest's MAC (its vif's `mac`), so network-config matches that interface. @default - matched by name */
  readonly macAddress?: pulumi.Input<string>;
  /** @default "eth0" */
  readonly interfaceName?: pulumi.Input<string>;
  /** The member's ed25519 host key and certificate. @default - cloud-init generates host keys */
  readonly sshHostKey?: pulumi.Input<Inputs<SeedSshHostKey>>;
  /** @default [] */
  readonly sshAuthorizedKeys?: pulumi.Input<pulumi.Input<string>[]>;
  /** SSH CAs whose host certificates the member trusts (`@cert-authority *`). @default [] */
  readonly sshCaPublicKeys?: pulumi.Input<pulumi.Input<string>[]>;
  /** Written to /etc/tvd/member.crt, member.key (0600) and ca.crt. @default - none */
  readonly x509?: pulumi.Input<Inputs<SeedX509>>;
  /**
   * The member agent (agent/PROTOCOL.md): installed and started by the seed, it takes ownership
   * of the member's vTPM with these auth values (a MemberIdentity's tpmOwnerAuth and tpmSrkAuth)
   * and reports its EK, SRK and AK to dom0 through xenstore. @default - no agent
   */
  readonly agent?: pulumi.Input<Inputs<SeedAgent>>;
  /** @default [] */
  readonly extraFiles?: pulumi.Input<pulumi.Input<Inputs<SeedExtraFile>>[]>;
}

export interface SeedImageArgs {
  /** How to reach the dom0. Stored as a secret: it holds the private key. */
  readonly connection: pulumi.Input<Inputs<ConnectionArgs>>;
  /** The member (guest domain) the seed is for. */
  readonly name: pulumi.Input<string>;
  /**
   * Where the image goes on the dom0; attach it to the guest as xvdb. A file already there is
   * never overwritten unless this resource made it (or `adopt` takes it over).
   * @default "/var/lib/xen/images/<name>-seed.img"
   */
  readonly path?: pulumi.Input<string>;
  /** Directories pulumi-tvd may write in on this dom0. @default ["/var/lib/xen", "/etc/xen"] */
  readonly allowedRoots?: pulumi.Input<pulumi.Input<string>[]>;
  /** @default 1024 */
  readonly sizeKiB?: pulumi.Input<number>;
  /** What cloud-init sets up in the member. Stored as a secret: it holds private keys. */
  readonly seed: pulumi.Input<SeedImageSeedArgs>;
  /**
   * Take over a file at `path` that pulumi-tvd did not make (no ownership record on the dom0); a
   * file another resource owns, such as a vTPM's key image, is refused whatever this says.
   * @default false
   */
  readonly adopt?: pulumi.Input<boolean>;
}

/**
 * A cloud-init NoCloud seed image (FAT, label `cidata`) for one TVD member: its host name,
 * network, SSH host key and certificate, trusted SSH CAs and X.509 identity. Built where Pulumi
 * runs (needs dosfstools and mtools there), written to the dom0 mode 0600, and recorded there as
 * this resource's: a file at `path` that is not its own is refused. A changed seed rewrites the
 * image in place; a missing or altered image shows as drift on `path`, which `up` repairs.
 */
export class SeedImage extends TvdResource {
  declare public readonly name: pulumi.Output<string>;
  declare public readonly path: pulumi.Output<string>;
  /** sha256 of the image written. */
  declare public readonly sha256: pulumi.Output<string>;

  constructor(name: string, args: SeedImageArgs, opts?: pulumi.CustomResourceOptions) {
    // Private keys arrive in the seed: the whole seed is a secret.
    super("SeedImage", name, args, { secretInputs: SEED_SECRETS, outputs: ["name", "path", "sha256"] }, opts);
  }
}
