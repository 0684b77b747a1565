export {
  renderSummary,
  TrustedVirtualDomain,
  type TrustedVirtualDomainProps,
  type TvdGuestTemplate,
  type TvdMeasuredBootProps,
  type TvdMember,
  type TvdMemberOutputs,
  type TvdMemberProps,
  type TvdNetworkProps,
} from "./trustedVirtualDomain";
export {
  mermaidLabel,
  TRUST_STYLE,
  TrustState,
  trustStateOf,
  tvdDiagram,
  type DiagramHost,
  type DiagramMember,
  type TvdDiagramInput,
} from "./diagram";
export { TvdPlanError, type MemberPlan, type TvdMemberSpec } from "./plan";
export { XenHost, type XenHostProps } from "./xenHost";
