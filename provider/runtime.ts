/**
 * The provider runtime module, `pulumi-tvd/runtime`. Serialized dynamic providers `require()` it
 * at call time (see dynamic.ts); every resource of a program then shares this module instance,
 * and with it the SSH connection pool.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { ResourceKind } from "./dynamic";
import { guestLifecycle } from "./resources/guest/provider";
import { hostFactsLifecycle } from "./resources/hostFacts/provider";
import { memberAttestationLifecycle } from "./resources/memberAttestation/provider";
import { memberIdentityLifecycle } from "./resources/memberIdentity/provider";
import { memberPortLifecycle } from "./resources/memberPort/provider";
import { revocationListLifecycle } from "./resources/revocationList/provider";
import { tvdAuthorityLifecycle } from "./resources/tvdAuthority/provider";
import { seedImageLifecycle } from "./resources/seedImage/provider";
import { tvdNetworkLifecycle } from "./resources/tvdNetwork/provider";
import { vtpmLifecycle } from "./resources/vtpm/provider";
import { vtpmIdentityLifecycle } from "./resources/vtpmIdentity/provider";
import { vtpmManagerLifecycle } from "./resources/vtpmManager/provider";

const lifecycles: Partial<Record<ResourceKind, pulumi.dynamic.ResourceProvider>> = {
  HostFacts: hostFactsLifecycle,
  VtpmManager: vtpmManagerLifecycle,
  Vtpm: vtpmLifecycle,
  Guest: guestLifecycle,
  TvdAuthority: tvdAuthorityLifecycle,
  MemberIdentity: memberIdentityLifecycle,
  SeedImage: seedImageLifecycle,
  TvdNetwork: tvdNetworkLifecycle,
  VtpmIdentity: vtpmIdentityLifecycle,
  MemberAttestation: memberAttestationLifecycle,
  MemberPort: memberPortLifecycle,
  TvdRevocationList: revocationListLifecycle,
};

export function lifecycle(kind: ResourceKind): pulumi.dynamic.ResourceProvider {
  const l = lifecycles[kind];
  if (!l) {
    throw new Error(
      `this pulumi-tvd (runtime) has no resource kind ${JSON.stringify(kind)}; the stack was written by a newer version`,
    );
  }
  return l;
}

export { closeAllSessions } from "./transport/ssh";
