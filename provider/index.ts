export { HostFacts, type HostFactsArgs } from "./resources/hostFacts/resource";
export { VtpmManager, type VtpmManagerArgs } from "./resources/vtpmManager/resource";
export type { ConnectionArgs } from "./transport/connection";
export { fingerprintOf } from "./transport/hostKey";
export { InputValidationError, type CheckFailure } from "./validation";
