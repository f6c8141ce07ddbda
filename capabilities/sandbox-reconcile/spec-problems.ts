/**
 * Problems in a KarsSandbox spec that the CRD schema cannot catch but that stop reconcile: they
 * make the sandbox `Stalled` with a stable reason, and no Deployment is created (DESIGN §5).
 */
import type { KarsSandbox } from "../shared/karssandbox-types";
import { Reason } from "../shared/constants";
import type { ReconcileConfig } from "./config";
import { canonicalEndpointHost } from "../../router/src/egress/host";

/** A spec problem: the condition reason, and a message that says what to do next. */
export interface SpecProblem {
  reason: string;
  message: string;
}

/** BYO runtime contract versions kars implements. */
export const SUPPORTED_BYO_CONTRACTS = ["v1"] as const;

/**
 * Returns the first problem that stops reconcile, or undefined: an unsupported BYO contract (strict
 * mode), or an allowlist host the router's egress proxy cannot use (router/src/egress/host.ts).
 */
export function specProblem(sb: KarsSandbox, cfg: ReconcileConfig): SpecProblem | undefined {
  const byo = sb.spec.runtime.byo;
  if (sb.spec.runtime.kind === "BYO" && cfg.byoStrict) {
    const v = byo?.contractVersion ?? "v1";
    if (!(SUPPORTED_BYO_CONTRACTS as readonly string[]).includes(v)) {
      return {
        reason: Reason.ByoContractUnsupported,
        message: `spec.runtime.byo.contractVersion: ${v} is not a supported BYO runtime contract (supported: ${SUPPORTED_BYO_CONTRACTS.join(", ")}; BYO strict mode). Set contractVersion to v1 and use an image that implements it.`,
      };
    }
  }
  // the router judges allowlist hosts with this same rule: a host it cannot use would make it refuse the projected profile
  const endpoints = sb.spec.networkPolicy?.allowedEndpoints ?? [];
  for (let i = 0; i < endpoints.length; i++) {
    const c = canonicalEndpointHost(endpoints[i].host);
    if (!c.ok) {
      return {
        reason: Reason.InvalidSpec,
        message: `spec.networkPolicy.allowedEndpoints[${i}].host: ${c.reason}. The router's egress proxy takes a DNS name, an IP literal or *.<domain>; a port goes in port, not in host.`,
      };
    }
  }
  return undefined;
}
