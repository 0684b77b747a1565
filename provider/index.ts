export { Guest, type GuestArgs, type GuestDiskArgs, type GuestVifArgs } from "./resources/guest/resource";
export { HostFacts, type HostFactsArgs } from "./resources/hostFacts/resource";
export { Vtpm, type VtpmArgs } from "./resources/vtpm/resource";
export { VtpmManager, type VtpmManagerArgs } from "./resources/vtpmManager/resource";
export type { ConnectionArgs } from "./transport/connection";
export { fingerprintOf } from "./transport/hostKey";
export { InputValidationError, type CheckFailure } from "./validation";
