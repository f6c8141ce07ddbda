/**
 * Status of a KarsSandbox from what reconcile observed, in kstatus terms
 * (https://github.com/kubernetes-sigs/cli-utils/blob/master/pkg/kstatus/README.md): `Ready`,
 * `Reconciling` (abnormal-true: still converging) and `Stalled` (abnormal-true: stuck, needs a human).
 * `observedGeneration` is the generation the conditions describe.
 */
import { Condition as C, Reason } from "../shared/constants";
import type { Condition, KarsSandbox, KarsSandboxStatus } from "../shared/karssandbox-types";
import type { PolicyLoad } from "./inference-policy-projection";

/**
 * What one reconcile pass observed. `policy`, when the pass got as far as reading the sandbox's
 * InferencePolicy, becomes the `PolicyLoaded` condition; a policy that could not be loaded keeps the
 * sandbox from Ready (phase Pending, Reconciling=True: kars re-reconciles when the policy changes).
 */
export type Observation = (
  | { kind: "applied"; deploymentReady: boolean; suspended: boolean; namespace: string }
  | { kind: "stalled"; reason: string; message: string; namespace?: string }
  | { kind: "applyFailed"; message: string; namespace?: string }
  | { kind: "admissionDenied"; message: string; namespace: string }
) & { policy?: PolicyLoad };

/**
 * Status for `sb` after an observation at time `now`. A condition's lastTransitionTime changes only
 * when its status changes (metav1.Condition semantics).
 */
export function sandboxStatus(sb: KarsSandbox, obs: Observation, now: Date): KarsSandboxStatus {
  const gen = sb.metadata.generation ?? 0;
  const mk = (type: string, status: Condition["status"], reason: string, message: string): Condition => ({ type, status, reason, message, observedGeneration: gen });
  let phase: KarsSandboxStatus["phase"];
  let conds: Condition[];
  switch (obs.kind) {
    case "applied": {
      if (obs.policy?.status === "False") {
        const { reason, message } = obs.policy;
        phase = obs.suspended ? "Suspended" : "Pending";
        conds = [mk(C.Ready, "False", reason, message), mk(C.Reconciling, "True", reason, message), mk(C.Stalled, "False", reason, "waiting for the InferencePolicy to be fixed")];
        break;
      }
      const ready = obs.suspended || obs.deploymentReady;
      phase = obs.suspended ? "Suspended" : ready ? "Ready" : "Provisioning";
      const msg = obs.suspended
        ? "sandbox is suspended: children applied, agent scaled to 0"
        : ready
          ? "all children applied; agent Deployment available"
          : "all children applied; waiting for the agent Deployment's pods";
      conds = [
        mk(C.Ready, ready ? "True" : "False", obs.suspended ? Reason.Suspended : ready ? Reason.ChildrenApplied : Reason.Progressing, msg),
        mk(C.Reconciling, ready ? "False" : "True", ready ? Reason.ChildrenApplied : Reason.Progressing, msg),
        mk(C.Stalled, "False", Reason.ChildrenApplied, "reconcile is making progress"),
      ];
      break;
    }
    case "stalled":
    case "admissionDenied": {
      const reason = obs.kind === "stalled" ? obs.reason : Reason.PodAdmissionDenied;
      phase = "Failed";
      conds = [mk(C.Ready, "False", reason, obs.message), mk(C.Reconciling, "False", reason, obs.message), mk(C.Stalled, "True", reason, obs.message)];
      if (obs.kind === "admissionDenied") conds.push(mk(C.AdmissionDenied, "True", reason, obs.message));
      break;
    }
    case "applyFailed":
      phase = "Pending";
      conds = [
        mk(C.Ready, "False", Reason.ApplyFailed, obs.message),
        mk(C.Reconciling, "True", Reason.ApplyFailed, `retrying: ${obs.message}`),
        mk(C.Stalled, "False", Reason.ApplyFailed, "retrying with backoff"),
      ];
      break;
  }
  if (obs.policy) conds.push(mk(C.PolicyLoaded, obs.policy.status, obs.policy.reason, obs.policy.message));
  const previous = sb.status?.conditions ?? [];
  const stamp = now.toISOString().replace(/\.\d{3}Z$/, "Z");
  for (const c of conds) {
    const old = previous.find(p => p.type === c.type);
    c.lastTransitionTime = old && old.status === c.status && old.lastTransitionTime ? old.lastTransitionTime : stamp;
  }
  const namespace = obs.namespace ?? sb.status?.namespace;
  const status: KarsSandboxStatus = { phase, observedGeneration: gen, conditions: conds };
  if (namespace) status.namespace = namespace;
  if (sb.status?.tokensUsed !== undefined) status.tokensUsed = sb.status.tokensUsed;
  return status;
}
