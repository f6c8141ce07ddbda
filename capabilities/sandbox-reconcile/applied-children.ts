/**
 * Which of a sandbox's children need applying again: pure rules over what the controller last
 * applied and what the apiserver holds now. A server-side apply that changes nothing still costs the
 * apiserver a full request (admission, ValidatingAdmissionPolicies, the field-manager merge), and a
 * sandbox is reconciled again for each of its Deployment's status changes while it rolls out;
 * bench:reconcile counted five such applies per sandbox on top of the five that made its children.
 */
import { createHash } from "node:crypto";
import type { KubernetesObject } from "@kubernetes/client-node";
import { canonical } from "../shared/json-equal";

/** What an apply left a child at, as the apiserver answered it. */
export interface AppliedState {
  /** metadata.uid: the same object, not one deleted and made again under the same name. */
  uid?: string;
  resourceVersion?: string;
  /** metadata.generation (kinds with a spec the apiserver versions: Deployment, NetworkPolicy). */
  generation?: number;
}

/** The controller's memory of one sandbox's last successful applies. */
export interface AppliedChildren {
  /** desiredDigest of the children that were applied. */
  digest: string;
  /** AppliedState by childKey. */
  children: Record<string, AppliedState>;
}

/** A live object as read back from the apiserver (the fields these rules look at). */
export interface LiveChild {
  metadata?: { uid?: string; resourceVersion?: string; generation?: number; deletionTimestamp?: unknown; labels?: Record<string, string>; annotations?: Record<string, string> };
}

/** `apiVersion/kind/namespace/name` of a child. */
export function childKey(o: KubernetesObject): string {
  return `${o.apiVersion}/${o.kind}/${o.metadata?.namespace ?? ""}/${o.metadata?.name}`;
}

/** Hex SHA-256 of the canonical JSON (json-equal.ts) of the desired children, in order. */
export function desiredDigest(children: readonly KubernetesObject[]): string {
  return createHash("sha256").update(canonical(children)).digest("hex");
}

/** Kinds whose status other controllers write (each write moves resourceVersion, not generation). */
const STATUS_WRITTEN_BY_OTHERS = new Set(["apps/v1/Deployment"]);

/**
 * Whether `live`, the child as the apiserver holds it now, is still exactly what the controller's
 * last apply of `desired` left, so that applying `desired` again would change nothing: the same
 * object (uid: not deleted and made again, perhaps with another spec at the same generation) and
 * either the same resourceVersion (nobody has written it since) or, for a kind whose status others
 * write (a Deployment: its rollout), the same generation (nobody changed its spec) with every label
 * and annotation of `desired` still in place. False when any of that is unknown: never applied, not
 * found, being deleted, or `last` is from other desired children (the caller compares digests).
 * Fails towards applying: a false "unchanged" would leave someone's edit of a sandbox's namespace,
 * NetworkPolicy, profile or Deployment in place until the next change.
 */
export function unchangedSinceApply(desired: KubernetesObject, live: LiveChild | undefined, last: AppliedState | undefined): boolean {
  const m = live?.metadata;
  if (!m || !last?.resourceVersion || !last.uid || m.uid !== last.uid || m.deletionTimestamp) return false;
  if (m.resourceVersion === last.resourceVersion) return true;
  if (!STATUS_WRITTEN_BY_OTHERS.has(`${desired.apiVersion}/${desired.kind}`)) return false;
  if (last.generation === undefined || m.generation !== last.generation) return false;
  const holds = (want: Record<string, string> | undefined, have: Record<string, string> | undefined) => Object.entries(want ?? {}).every(([k, v]) => have?.[k] === v);
  return holds(desired.metadata?.labels, m.labels) && holds(desired.metadata?.annotations, m.annotations);
}
