/**
 * Problems in a KarsSandbox spec that the CRD schema cannot catch but that stop reconcile: they
 * make the sandbox `Stalled` with a stable reason, and no Deployment is created (DESIGN §5).
 */
import type { KarsSandbox } from "../shared/karssandbox-types";
import { Reason } from "../shared/constants";
import type { ReconcileConfig } from "./config";

/** A spec problem: the condition reason, and a message that says what to do next. */
export interface SpecProblem {
  reason: string;
  message: string;
}

/** BYO runtime contract versions kars implements. */
export const SUPPORTED_BYO_CONTRACTS = ["v1"] as const;

/** Returns the first problem that stops reconcile, or undefined. */
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
  return undefined;
}
