export { Guest, type GuestArgs, type GuestDiskArgs, type GuestVifArgs } from "./resources/guest/resource";
export { HostFacts, type HostFactsArgs } from "./resources/hostFacts/resource";
export { MemberAttestation, type MemberAttestationArgs } from "./resources/memberAttestation/resource";
export {
  BaselineError,
  pvGrubBaseline,
  type PcrBaseline,
  type PvGrubBaselineArgs,
} from "./resources/memberAttestation/baseline";
export { MemberIdentity, type MemberIdentityArgs } from "./resources/memberIdentity/resource";
export { MemberPort, type MemberPortArgs } from "./resources/memberPort/resource";
export { TvdRevocationList, type TvdRevocationListArgs } from "./resources/revocationList/resource";
export { TvdAuthority, type TvdAuthorityArgs } from "./resources/tvdAuthority/resource";
export { TvdNetwork, type TvdNetworkArgs } from "./resources/tvdNetwork/resource";
export { SeedImage, type SeedImageArgs, type SeedImageSeedArgs } from "./resources/seedImage/resource";
export { Vtpm, type VtpmArgs } from "./resources/vtpm/resource";
export { VtpmIdentity, type VtpmIdentityArgs } from "./resources/vtpmIdentity/resource";
export { VtpmManager, type VtpmManagerArgs } from "./resources/vtpmManager/resource";
export type { ConnectionArgs } from "./transport/connection";
export { fingerprintOf } from "./transport/hostKey";
export { InputValidationError, type CheckFailure } from "./validation";
