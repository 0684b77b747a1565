import { z } from "zod";
import { connectionSchema } from "../../transport/connection";

const IPV4 = /^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)$/;

/**
 * A unicast IPv4 address: VXLAN's head-end replication sends a copy to each peer, so neither
 * 0.0.0.0, multicast nor broadcast make sense as one.
 */
const unicastIpv4 = z
  .string()
  .regex(IPV4, "must be an IPv4 address such as 10.99.0.1")
  .refine(
    (a) => {
      // A malformed address is reported once, by the regex.
      const first = Number(a.split(".")[0]);
      return !IPV4.test(a) || (first !== 0 && first < 224);
    },
    {
      message:
        "must be a unicast address (not 0.x.x.x, multicast or broadcast): use the host's underlay address",
    },
  );

const MTU = "must be a whole number from 576 to 9000 (VXLAN adds 50 bytes: 1450 on a 1500 underlay)";
const VNI = "must be a whole number from 1 to 16777215 (a VXLAN network identifier is 24 bits)";
const PORT = "must be a UDP port from 1 to 65535 (4789 is VXLAN's IANA port)";

/**
 * A Linux interface name that pulumi-tvd may create and later delete: at most 15 characters
 * (IFNAMSIZ less the NUL), never starting with '-' (it would read as an option), and none of the
 * names dom0 already uses for its own links.
 */
export const bridgeName = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/,
    "must be an interface name of 1 to 15 letters, digits, '_', '.' or '-', starting with a letter or digit, such as tvd-red",
  )
  .refine((n) => !/^(lo|eth\d+|vx\d+|vif\d.*|xenbr\d+)$/.test(n), {
    message:
      "names a link dom0 or pulumi-tvd already uses (lo, ethN, vxN, vifN.M, xenbrN): choose a TVD-specific name such as tvd-<name>",
  });

/**
 * One TVD's network on one dom0: a bridge its guests' vifs join, linked to the TVD's other hosts
 * by a VXLAN with the TVD's own VNI. Two TVDs share no bridge and no VNI, so neither sees the
 * other's frames.
 */
export const tvdNetworkShape = z.strictObject({
  connection: connectionSchema,
  bridge: bridgeName,
  vni: z.number().int(VNI).min(1, VNI).max(16777215, VNI),
  /**
   * The TVD's holding bridge on this host: its members' vifs are declared on it and come up there
   * at every start; it is kept down (its ports forward nothing, to one another or to dom0) and has
   * no uplink, and a MemberPort moves an attested member's port onto the TVD bridge.
   * @default - none: guests' vifs join the TVD bridge directly, with no admission
   */
  holdingBridge: bridgeName.optional(),
  /** This host's address on the underlay; the VXLAN's packets leave from it. */
  localIp: unicastIpv4,
  /** The underlay addresses of the TVD's other hosts. @default - none (a TVD on one host) */
  peers: z.array(unicastIpv4).default([]),
  /** @default - 1450 (a 1500-byte underlay less VXLAN's overhead) */
  mtu: z.number().int(MTU).min(576, MTU).max(9000, MTU).default(1450),
  /** @default - 4789 */
  dstPort: z.number().int(PORT).min(1, PORT).max(65535, PORT).default(4789),
  /**
   * Take over a bridge or VXLAN of these names that pulumi-tvd did not make (no ownership record):
   * its MTU and peers are then set as declared, and delete removes it.
   * @default false
   */
  adopt: z.boolean().default(false),
});

/** Checks that span properties; they look only at well-formed values. */
function checkPeers(
  v: Partial<Record<keyof z.input<typeof tvdNetworkShape>, unknown>>,
  ctx: z.RefinementCtx,
) {
  if (v.holdingBridge !== undefined && v.holdingBridge === v.bridge) {
    ctx.addIssue({
      code: "custom",
      path: ["holdingBridge"],
      message: `${String(v.holdingBridge)} is the TVD bridge itself: give the holding bridge its own name, such as tvh-<tvd>`,
    });
  }
  if (!Array.isArray(v.peers)) return;
  const first = new Map<unknown, number>();
  v.peers.forEach((p, i) => {
    if (p === v.localIp) {
      ctx.addIssue({
        code: "custom",
        path: ["peers", i],
        message: `${String(p)} is this host's own localIp: list only the other hosts of the TVD`,
      });
    }
    const seen = first.get(p);
    if (seen === undefined) first.set(p, i);
    else
      ctx.addIssue({
        code: "custom",
        path: ["peers", i],
        message: `${String(p)} is already peers[${seen}]: list each host once`,
      });
  });
}

export const tvdNetworkSchema = tvdNetworkShape.superRefine(checkPeers, { when: () => true });

export type TvdNetworkInputs = z.output<typeof tvdNetworkSchema>;

/** The VXLAN device carrying a VNI, as pulumi-tvd names it on every host. */
export function vxlanOf(v: { vni: number }): string {
  return `vx${v.vni}`;
}
