/**
 * The admission webhook configurations of kars (DESIGN §4): pods (and pods/ephemeralcontainers) in
 * namespaces labelled `kars.azure.com/role=sandbox`, failurePolicy Fail in that scope only, so an
 * outage of kars never blocks pods elsewhere; `sideEffects: None` for server-side dry-runs.
 */
import { LABEL_ROLE, ROLE_SANDBOX } from "./constants";

/** Where the apiserver reaches the kars webhook server. */
export type WebhookTarget =
  | { url: string; caBundle: string } // outside the cluster (local provider): https://host:port
  | { service: { namespace: string; name: string; port: number }; caBundle: string };

/** Names of the two configurations (cluster-scoped). */
export const MUTATING_WEBHOOK = "kars-sandbox-mutate";
export const VALIDATING_WEBHOOK = "kars-sandbox-validate";

function clientConfig(target: WebhookTarget, path: string): Record<string, unknown> {
  if ("url" in target) return { url: `${target.url}${path}`, caBundle: target.caBundle };
  return { service: { ...target.service, path }, caBundle: target.caBundle };
}

/** A validating webhook on one kars resource that never blocks a write when kars is down (failurePolicy Ignore). */
function failingOpen(target: WebhookTarget, apiPath: string, name: string, resource: string, scope: "Namespaced" | "Cluster"): Record<string, unknown> {
  return {
    name,
    clientConfig: clientConfig(target, `/validate/${apiPath}`),
    rules: [{ apiGroups: ["kars.azure.com"], apiVersions: ["v1alpha1"], operations: ["CREATE", "UPDATE"], resources: [resource], scope }],
    failurePolicy: "Ignore",
    sideEffects: "None",
    admissionReviewVersions: ["v1"],
    timeoutSeconds: 5,
    matchPolicy: "Equivalent",
  };
}

/**
 * Builds both configurations. `apiPath` is the Pepr module's secret path segment
 * (PEPR_API_PATH): Pepr refuses requests on any other path. `caBundle` is base64 PEM.
 */
export function desiredWebhookConfigurations(target: WebhookTarget, apiPath: string): Record<string, unknown>[] {
  const common = {
    namespaceSelector: { matchLabels: { [LABEL_ROLE]: ROLE_SANDBOX } },
    failurePolicy: "Fail",
    sideEffects: "None",
    admissionReviewVersions: ["v1"],
    timeoutSeconds: 10,
    matchPolicy: "Equivalent",
  };
  const podRules = [
    { apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["pods", "pods/ephemeralcontainers"], scope: "Namespaced" },
  ];
  return [
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "MutatingWebhookConfiguration",
      metadata: { name: MUTATING_WEBHOOK, labels: { "app.kubernetes.io/managed-by": "kars" } },
      webhooks: [{ name: "pods.sandbox.mutate.kars.azure.com", clientConfig: clientConfig(target, `/mutate/${apiPath}`), rules: podRules, reinvocationPolicy: "IfNeeded", ...common }],
    },
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingWebhookConfiguration",
      metadata: { name: VALIDATING_WEBHOOK, labels: { "app.kubernetes.io/managed-by": "kars" } },
      webhooks: [
        { name: "pods.sandbox.validate.kars.azure.com", clientConfig: clientConfig(target, `/validate/${apiPath}`), rules: podRules, ...common },
        // Warnings only (fields kept but not acted on): never blocks, in any namespace.
        failingOpen(target, apiPath, "karssandboxes.validate.kars.azure.com", "karssandboxes", "Namespaced"),
        // A KarsImagePolicy whose key does not parse, or whose globs can never match, is refused at apply
        // (the CRD's CEL checks the basics even while kars is down: Ignore, so kars' outage blocks no writes).
        failingOpen(target, apiPath, "karsimagepolicies.validate.kars.azure.com", "karsimagepolicies", "Cluster"),
      ],
    },
  ];
}
