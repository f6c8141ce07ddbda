/**
 * The children one KarsSandbox reconciles into (DESIGN §5): Namespace `kars-<name>`, ServiceAccount
 * (no token automount), NetworkPolicy (default deny; DNS; public :443 except private ranges),
 * the router-profile ConfigMap (DESIGN §6 `profile.json`) and the agent Deployment. Pure: the same
 * sandbox and config always give the same objects, ready for server-side apply.
 */
import type { V1ConfigMap, V1Deployment, V1Namespace, V1NetworkPolicy, V1ServiceAccount, V1EnvVar, V1Container } from "@kubernetes/client-node";
import {
  AGENT_UID, LABEL_ISOLATION, LABEL_MANAGED_BY, LABEL_ROLE, LABEL_SANDBOX, LABEL_SANDBOX_NAMESPACE, MANAGED_BY, ROLE_SANDBOX,
} from "../shared/constants";
import type { KarsSandbox } from "../shared/karssandbox-types";
import { ANNOTATION_WRITABLE_PATHS } from "../sandbox-admission/config";
import { ROUTER_PROFILE_CONFIGMAP } from "../sandbox-admission/injected-containers";
import type { ReconcileConfig } from "./config";
import type { InferenceProjection } from "./inference-policy-projection";
import { defaultEncryptedClientHello } from "../../router/src/egress/config";

/** Name of the agent Deployment, its container and its ServiceAccount in the sandbox namespace. */
export const AGENT_NAME = "agent";

/** The children, in apply order (namespace first). */
export interface SandboxChildren {
  namespace: V1Namespace;
  serviceAccount: V1ServiceAccount;
  networkPolicy: V1NetworkPolicy;
  routerProfile: V1ConfigMap;
  deployment: V1Deployment;
}

/** Name of a sandbox's namespace: `kars-<name>` (DESIGN §2). */
export function sandboxNamespaceName(sb: KarsSandbox): string {
  return `kars-${sb.metadata.name}`;
}

/** Labels every child carries. */
export function childLabels(sb: KarsSandbox): Record<string, string> {
  return { [LABEL_SANDBOX]: sb.metadata.name, [LABEL_SANDBOX_NAMESPACE]: sb.metadata.namespace, [LABEL_MANAGED_BY]: MANAGED_BY };
}

/** Builds every child of `sb`; `inference` is its InferencePolicy projection (inference-policy-projection.ts). */
export function desiredChildren(sb: KarsSandbox, cfg: ReconcileConfig, inference: InferenceProjection): SandboxChildren {
  return {
    namespace: desiredNamespace(sb),
    serviceAccount: desiredServiceAccount(sb),
    networkPolicy: desiredNetworkPolicy(sb),
    routerProfile: desiredRouterProfile(sb, cfg, inference),
    deployment: desiredDeployment(sb, cfg),
  };
}

function isolation(sb: KarsSandbox): string {
  return sb.spec.sandbox?.isolation ?? "enhanced";
}

function writablePaths(sb: KarsSandbox): string[] {
  return sb.spec.sandbox?.writablePaths ?? ["/sandbox", "/tmp"];
}

/** The sandbox namespace, labelled so admission applies to it (DESIGN §2, §4). */
export function desiredNamespace(sb: KarsSandbox): V1Namespace {
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: {
      name: sandboxNamespaceName(sb),
      labels: {
        ...childLabels(sb),
        [LABEL_ROLE]: ROLE_SANDBOX,
        [LABEL_ISOLATION]: isolation(sb),
      },
      annotations: { [ANNOTATION_WRITABLE_PATHS]: JSON.stringify(writablePaths(sb)) },
    },
  };
}

/** The agent's ServiceAccount; no token is mounted (DESIGN §2: the agent never sees a credential). */
export function desiredServiceAccount(sb: KarsSandbox): V1ServiceAccount {
  return {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name: AGENT_NAME, namespace: sandboxNamespaceName(sb), labels: childLabels(sb) },
    automountServiceAccountToken: false,
  };
}

/** Private, link-local, CGNAT and loopback ranges excluded from the public egress rule. */
export const NON_PUBLIC_V4 = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10", "127.0.0.0/8"];
export const NON_PUBLIC_V6 = ["fc00::/7", "fe80::/10", "::1/128", "64:ff9b::/96"];

/**
 * Default deny for ingress and egress; egress only to cluster DNS (port 53) and public addresses on
 * 443 plus any non-default port an allowed endpoint names.
 */
export function desiredNetworkPolicy(sb: KarsSandbox): V1NetworkPolicy {
  const ports = new Set<number>([443]);
  for (const e of sb.spec.networkPolicy?.allowedEndpoints ?? []) ports.add(e.port ?? 443);
  // Learn lets the router's proxy forward plain HTTP to any public host on its standard port (router/src/egress/decision.ts)
  if ((sb.spec.networkPolicy?.egressMode ?? "Learn") === "Learn") ports.add(80);
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "kars-sandbox", namespace: sandboxNamespaceName(sb), labels: childLabels(sb) },
    spec: {
      podSelector: {},
      // no ingress rules: policyTypes Ingress with none denies all ingress. (`ingress: []` must not be
      // sent: the apiserver stores an empty list as absent, so every server-side apply changed the
      // object, bumped its generation, and its watch event queued the next reconcile, forever.)
      policyTypes: ["Ingress", "Egress"],
      egress: [
        {
          to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } }, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }],
          ports: [{ protocol: "UDP", port: 53 }, { protocol: "TCP", port: 53 }],
        },
        {
          to: [
            { ipBlock: { cidr: "0.0.0.0/0", except: NON_PUBLIC_V4 } },
            { ipBlock: { cidr: "::/0", except: NON_PUBLIC_V6 } },
          ],
          ports: [...ports].sort((a, b) => a - b).map(port => ({ protocol: "TCP", port })),
        },
      ],
    },
  };
}

/**
 * The router profile (`profile.json`, DESIGN §6), projected into the router at /etc/kars.
 * `inferencePolicy` and `tenantTokenBudget` (tokens per UTC window) come from `inference`;
 * `encryptedClientHello` (kars extension) is the sandbox's, or its egress mode's default.
 */
export function routerProfile(sb: KarsSandbox, cfg: ReconcileConfig, inference: InferenceProjection): Record<string, unknown> {
  const egressMode = sb.spec.networkPolicy?.egressMode ?? "Learn";
  const profile: Record<string, unknown> = {
    sandbox: sb.metadata.name,
    tenant: sb.metadata.namespace,
    egressMode,
    allowedEndpoints: (sb.spec.networkPolicy?.allowedEndpoints ?? []).map(e => ({ host: e.host, port: e.port ?? 443 })),
    // written out resolved, so that the profile says what the proxy does (the mode's default when unset)
    encryptedClientHello: sb.spec.networkPolicy?.encryptedClientHello ?? defaultEncryptedClientHello(egressMode),
    inferencePolicy: inference.inferencePolicy,
    upstreams: cfg.upstreams.map(u => ({ ...u })),
  };
  if (inference.tenantTokenBudget) profile.tenantTokenBudget = inference.tenantTokenBudget;
  return profile;
}

/** The ConfigMap `kars-router-profile` holding `profile.json` (DESIGN §6), projected at /etc/kars. */
export function desiredRouterProfile(sb: KarsSandbox, cfg: ReconcileConfig, inference: InferenceProjection): V1ConfigMap {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: ROUTER_PROFILE_CONFIGMAP, namespace: sandboxNamespaceName(sb), labels: childLabels(sb) },
    data: { "profile.json": JSON.stringify(routerProfile(sb, cfg, inference), null, 2) + "\n" },
  };
}

/** Agent container for the sandbox's runtime kind (BYO: the user's image, command, args, env). */
export function desiredAgentContainer(sb: KarsSandbox, cfg: ReconcileConfig): V1Container {
  const rt = sb.spec.runtime;
  const env: V1EnvVar[] = [{ name: "OPENAI_BASE_URL", value: "http://127.0.0.1:8443/v1" }];
  let image: string;
  let command: string[] | undefined;
  let args: string[] | undefined;
  if (rt.kind === "BYO" && rt.byo) {
    image = rt.byo.image;
    command = rt.byo.command;
    args = rt.byo.args;
    // (an empty value is left out, as the apiserver stores it: see `args` below)
    for (const e of rt.byo.env ?? []) env.push(e.value ? { name: e.name, value: e.value } : { name: e.name });
  } else {
    const block = runtimeBlock(sb);
    image = agentCodeImage(block) ?? cfg.runtimeImages[rt.kind as Exclude<typeof rt.kind, "BYO">];
    for (const [name, value] of Object.entries(extraEnv(block))) env.push({ name, value });
  }
  const c: V1Container = {
    name: AGENT_NAME,
    image,
    env,
    securityContext: {
      runAsUser: AGENT_UID,
      runAsNonRoot: true,
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    },
  };
  // empty lists are left out: the apiserver stores them as absent, so sending one would change the
  // object on every server-side apply (and its watch event would queue the next reconcile, forever)
  if (command?.length) c.command = command;
  if (args?.length) c.args = args;
  if (sb.spec.resources) c.resources = sb.spec.resources as V1Container["resources"];
  return c;
}

function runtimeBlock(sb: KarsSandbox): Record<string, unknown> {
  for (const [key, value] of Object.entries(sb.spec.runtime)) {
    if (key !== "kind" && value && typeof value === "object") return value as Record<string, unknown>;
  }
  return {};
}

function agentCodeImage(block: Record<string, unknown>): string | undefined {
  const oci = (block.agentCode as { oci?: { image?: unknown } } | undefined)?.oci;
  return typeof oci?.image === "string" && oci.image !== "" ? oci.image : undefined;
}

function extraEnv(block: Record<string, unknown>): Record<string, string> {
  const e = block.extraEnv;
  if (!e || typeof e !== "object") return {};
  return Object.fromEntries(Object.entries(e as Record<string, unknown>).filter(([, v]) => typeof v === "string")) as Record<string, string>;
}

/** The agent Deployment; replicas 0 when `spec.suspended`. */
export function desiredDeployment(sb: KarsSandbox, cfg: ReconcileConfig): V1Deployment {
  const selector = { "app.kubernetes.io/name": "kars-agent", [LABEL_SANDBOX]: sb.metadata.name };
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: AGENT_NAME, namespace: sandboxNamespaceName(sb), labels: childLabels(sb) },
    spec: {
      replicas: sb.spec.suspended ? 0 : 1,
      selector: { matchLabels: selector },
      strategy: { type: "Recreate" },
      template: {
        metadata: { labels: { ...selector, [LABEL_SANDBOX_NAMESPACE]: sb.metadata.namespace } },
        spec: {
          serviceAccountName: AGENT_NAME,
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          containers: [desiredAgentContainer(sb, cfg)],
        },
      },
    },
  };
}
