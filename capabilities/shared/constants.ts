/**
 * Wire literals shared by admission, reconcile, the CLI and the tests: API group, label and annotation
 * keys, condition types and reasons (DESIGN §2, §3, §5). Keep spellings exactly as on the wire.
 */

/** API group and version of every kars CR (kept from the original so existing manifests apply). */
export const GROUP = "kars.azure.com";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

/** Labels on sandbox namespaces and on every child object. */
export const LABEL_ROLE = "kars.azure.com/role";
export const ROLE_SANDBOX = "sandbox";
export const LABEL_SANDBOX = "kars.azure.com/sandbox";
export const LABEL_SANDBOX_NAMESPACE = "kars.azure.com/sandbox-namespace";
export const LABEL_ISOLATION = "kars.azure.com/isolation";
export const LABEL_MANAGED_BY = "app.kubernetes.io/managed-by";
export const MANAGED_BY = "kars";

/** Finalizer that removes the cross-namespace children of a KarsSandbox before it goes. */
export const FINALIZER = "kars.azure.com/cleanup";

/** Field manager for every server-side apply by the reconciler (one manager, DESIGN §5). */
export const FIELD_MANAGER = "kars-controller";

/** kstatus condition types (https://github.com/kubernetes-sigs/cli-utils/tree/master/pkg/kstatus). */
export const Condition = {
  Ready: "Ready",
  Reconciling: "Reconciling",
  Stalled: "Stalled",
  RuntimeReady: "RuntimeReady",
  AdmissionDenied: "AdmissionDenied",
  PolicyLoaded: "PolicyLoaded",
} as const;

/** Stable condition reasons. */
export const Reason = {
  ChildrenApplied: "ChildrenApplied",
  Progressing: "Progressing",
  Suspended: "Suspended",
  InvalidSpec: "InvalidSpec",
  ByoContractUnsupported: "ByoContractUnsupported",
  ApplyFailed: "ApplyFailed",
  PodAdmissionDenied: "PodAdmissionDenied",
  PolicyLoaded: "PolicyLoaded",
  InferencePolicyNotFound: "InferencePolicyNotFound",
  InferencePolicyMismatch: "InferencePolicyMismatch",
  InvalidInferencePolicy: "InvalidInferencePolicy",
  ModelNotServed: "ModelNotServed",
} as const;

/** Names of the containers kars injects; a user container may not take them (DESIGN §4). */
export const EGRESS_GUARD = "egress-guard";
export const INFERENCE_ROUTER = "inference-router";

/** UIDs of DESIGN §2: the agent and the router. */
export const AGENT_UID = 1000;
export const ROUTER_UID = 1001;

/** Env var prefixes a user may not set (DESIGN §3). */
export const RESERVED_ENV_PREFIXES = ["KARS_", "AGT_", "MESH_", "FOUNDRY_", "AZURE_", "OTEL_"] as const;

/** The sandbox rule name rendered in admission messages. */
export const POSTURE_RULE = "kars sandbox posture";
