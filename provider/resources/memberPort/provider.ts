/**
 * MemberPort, declared once: where a TVD member's port is. Admitted, it is on the TVD bridge;
 * otherwise on the TVD's holding bridge, which forwards nothing. A guest's vif always comes up on
 * the holding bridge (its xl config names it), so a member that restarts is held again until the
 * next `up` re-attests it and admits it. It owns no artifact: it moves a port its stack's Guest
 * owns between two bridges its stack's TvdNetwork owns, and refuses anything else, naming what is
 * there. Delete puts the port back on hold. With crlPem, an admitted member also holds the TVD's
 * CRL in its xenstore data path (data/tvd/crl), so it can reject the certificates of members
 * removed from the TVD.
 */
import {
  defineResource,
  driftMarker,
  type ChangeClasses,
  type Context,
  type ResourceDefinition,
} from "../../core/define";
import { artifactKey, type Artifact, type OwnerRecord } from "../../core/ownership";
import { MemberPorts, type PortSeen } from "../../dom0/memberPorts";
import { memberPortSchema, type MemberPortInputs } from "./args";

export interface MemberPortExtra {
  /** The bridge the port is on now; null when it has none or does not exist. */
  readonly portBridge: string | null;
}

const changes: ChangeClasses<MemberPortInputs> = {
  connection: "replace",
  port: "replace",
  domain: "inPlace",
  bridge: "replace",
  holdingBridge: "replace",
  admission: "inPlace",
  attestedAt: "inPlace",
  admitted: "inPlace",
  refusal: "inPlace",
  crlPem: "inPlace",
};

/** Where a port is moved: the port, its domain and the TVD's two bridges on its dom0. */
export type PortPlace = Pick<MemberPortInputs, "connection" | "port" | "domain" | "bridge" | "holdingBridge">;

const portOf = (v: PortPlace): Artifact => ({
  type: "link",
  name: v.port,
  role: "guest vif",
  property: "port",
});
const bridgeOf = (v: PortPlace): Artifact => ({
  type: "bridge",
  name: v.bridge,
  role: "TVD bridge",
  property: "bridge",
});
const holdOf = (v: PortPlace): Artifact => ({
  type: "bridge",
  name: v.holdingBridge,
  role: "TVD holding bridge",
  property: "holdingBridge",
});

/** `<project>/<stack>`: the first word of an owner string (see dynamic.ts resourceOwner). */
const stackOf = (owner: string) => owner.split(" ")[0];

/**
 * Why this MemberPort may not move the port, from the host's ownership records: the port must be
 * a guest vif of its own stack, and both bridges the TVD bridge and holding bridge of one of its
 * stack's TvdNetworks. Empty when it may. Pure.
 */
export function ownershipProblems(
  v: PortPlace,
  owner: string,
  records: ReadonlyMap<string, OwnerRecord>,
): string[] {
  const stack = stackOf(owner);
  const problems: string[] = [];
  const expect = (a: Artifact, sameOwnerAs?: string) => {
    const r = records.get(artifactKey(a));
    const what = `${a.role} ${a.name}`;
    if (!r?.owner) {
      problems.push(
        r?.exists
          ? `${a.name} is not made by pulumi-tvd (no ownership record): declare it as the ${what} (${a.property}) of this stack`
          : `${what} does not exist: declare it in this stack (${a.property})`,
      );
    } else if (stackOf(r.owner) !== stack || r.role !== a.role) {
      problems.push(`${a.name} is ${r.owner}'s ${r.role ?? "artifact"}, not a ${a.role} of ${stack}`);
    } else if (sameOwnerAs !== undefined && r.owner !== sameOwnerAs) {
      problems.push(
        `${a.name} belongs to ${r.owner}, not to the network of bridge ${v.bridge} (${sameOwnerAs})`,
      );
    }
    return r?.owner;
  };
  expect(portOf(v));
  const network = expect(bridgeOf(v));
  expect(holdOf(v), network);
  return problems;
}

/** What the port's place says about the inputs. Pure. */
export function portInputsSeen(
  v: MemberPortInputs,
  seen: PortSeen,
): { seen: Partial<MemberPortInputs>; extra: MemberPortExtra } {
  const extra = { portBridge: seen.master ?? null };
  if (!seen.exists)
    return {
      seen: {
        port: driftMarker(
          v.port,
          "missing",
          `domain ${v.domain} is not running, or its vif has another name`,
        ),
      },
      extra,
    };
  if (seen.master === v.bridge) return { seen: { admitted: true }, extra };
  if (seen.master === v.holdingBridge) return { seen: { admitted: false }, extra };
  return {
    seen: {
      admitted: false,
      bridge: driftMarker(v.bridge, "foreign", `${v.port} is on ${seen.master ?? "no bridge"}`),
    },
    extra,
  };
}

/**
 * The CRL the member holds, as an input: a restarted guest (a new domid, an empty data path) or
 * a node changed out of band shows as drift on crlPem, and `up` hands it the list again. Pure.
 */
export function crlSeen(v: MemberPortInputs, held: string | undefined): Partial<MemberPortInputs> {
  if (!v.crlPem || held === undefined || held.trim() === v.crlPem.trim()) return {};
  return { crlPem: held.trim() ? held : driftMarker("the TVD's CRL", "missing", `${v.domain} holds none`) };
}

const portsOf = (v: PortPlace) => MemberPorts.connect(v.connection);

/** Refuses, naming what is there, unless the port and both bridges are this stack's. */
async function checkOwnership(ctx: Context, v: PortPlace, endpoint: string): Promise<void> {
  const records = await ctx.dom0!.owners([portOf(v), bridgeOf(v), holdOf(v)]);
  const problems = ownershipProblems(v, ctx.owner, records);
  if (problems.length)
    throw new Error(
      `refusing to move port ${v.port} of ${v.domain} on ${endpoint}: pulumi-tvd moves only its own guests' ports between its own TVD bridges:\n  - ${problems.join("\n  - ")}`,
    );
}

/**
 * The port where it belongs: on the TVD bridge when admitted, held otherwise; an admitted member
 * holds the TVD's CRL (before its port joins, so it never talks to the TVD without it).
 */
async function place(ctx: Context, v: MemberPortInputs): Promise<MemberPortExtra> {
  const ports = await portsOf(v);
  await checkOwnership(ctx, v, ports.endpoint);
  if (v.admitted && v.crlPem) await ports.writeCrl(v.domain, v.port, v.crlPem);
  const [to, from] = v.admitted ? [v.bridge, v.holdingBridge] : [v.holdingBridge, v.bridge];
  await ports.movePort(v.port, v.domain, to, from);
  // Held for a reason: the port is where it belongs, and the `up` says why the member is out.
  if (!v.admitted && v.refusal) throw new Error(v.refusal);
  return { portBridge: to };
}

/**
 * Puts a member's port back on hold (a member that failed its attestation): the same ownership
 * check as a MemberPort's, and a port already held is left as it is. Returns the holding bridge's
 * host, for the error that follows.
 */
export async function holdPort(ctx: Context, v: PortPlace): Promise<string> {
  const ports = await portsOf(v);
  await checkOwnership(ctx, v, ports.endpoint);
  await ports.movePort(v.port, v.domain, v.holdingBridge, v.bridge);
  return ports.endpoint;
}

export const definition: ResourceDefinition<MemberPortInputs, MemberPortExtra> = {
  kind: "MemberPort",
  schema: memberPortSchema,
  shape: memberPortSchema.shape,
  changes,
  // It owns nothing on the host, but delete must reach it to put the port back on hold.
  artifacts: () => [],
  id: (v) => v.port,
  deleteBeforeReplace: true,

  async observe(_ctx, v) {
    const ports = await portsOf(v);
    const [port, crl] = await Promise.all([
      ports.readPort(v.port),
      v.crlPem ? ports.readCrl(v.domain) : Promise.resolve(undefined),
    ]);
    const { seen, extra } = portInputsSeen(v, port);
    return { gone: false, seen: { ...seen, ...crlSeen(v, crl) }, extra };
  },

  create: place,
  update: place,

  /** Back on hold; a port that is gone (its guest with it) or elsewhere is left as it is. */
  async delete(ctx, v) {
    const ports = await portsOf(v);
    const now = await ports.readPort(v.port);
    if (!now.exists || now.master !== v.bridge) return;
    const records = await ctx.dom0!.owners([portOf(v), bridgeOf(v), holdOf(v)]);
    const problems = ownershipProblems(v, ctx.owner, records);
    if (problems.length) {
      console.error(
        `pulumi-tvd: leaving port ${v.port} on ${ports.endpoint} where it is: ${problems.join("; ")}`,
      );
      return;
    }
    await ports.movePort(v.port, v.domain, v.holdingBridge, v.bridge);
  },
};

export const memberPortLifecycle = defineResource(definition);
