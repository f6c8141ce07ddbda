/**
 * The two containers kars injects into every sandbox pod (DESIGN §2) and the exact-spec test that
 * recognises them. Recognition is by image + command + args + securityContext, never by name alone
 * (DESIGN §4): a user container that takes a reserved name with any other spec is refused.
 */
import type { V1Container, V1SecurityContext, V1Volume } from "@kubernetes/client-node";
import { EGRESS_GUARD, INFERENCE_ROUTER, ROUTER_UID, AGENT_UID } from "../shared/constants";
import type { AdmissionConfig } from "./config";

/** Volume names kars adds for the router. */
export const ROUTER_CONFIG_VOLUME = "kars-config";
export const ROUTER_STATE_VOLUME = "kars-router-state";
/** ConfigMap holding the router profile (written by the reconciler). */
export const ROUTER_PROFILE_CONFIGMAP = "kars-router-profile";

/** The egress-guard init container: root with NET_ADMIN+NET_RAW only, installs iptables, exits. */
export function desiredEgressGuard(cfg: AdmissionConfig): V1Container {
  return {
    name: EGRESS_GUARD,
    image: cfg.egressGuardImage,
    command: ["/usr/local/bin/egress-guard"],
    env: [
      { name: "KARS_AGENT_UID", value: String(AGENT_UID) },
      { name: "KARS_PROXY_PORT", value: "8444" },
      { name: "KARS_CLUSTER_DNS", value: cfg.clusterDns.join(",") },
    ],
    securityContext: egressGuardSecurityContext(),
  };
}

function egressGuardSecurityContext(): V1SecurityContext {
  return {
    runAsUser: 0,
    runAsNonRoot: false,
    privileged: false,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { add: ["NET_ADMIN", "NET_RAW"], drop: ["ALL"] },
  };
}

/** The inference-router sidecar: UID 1001, drop ALL, RO rootfs; config from /etc/kars. */
export function desiredRouterSidecar(cfg: AdmissionConfig): V1Container {
  return {
    name: INFERENCE_ROUTER,
    image: cfg.routerImage,
    command: ["kars"],
    args: ["router", "--config-dir", "/etc/kars", "--state-dir", "/var/lib/kars"],
    ports: [{ name: "ops", containerPort: 9090, protocol: "TCP" }],
    volumeMounts: [
      { name: ROUTER_CONFIG_VOLUME, mountPath: "/etc/kars", readOnly: true },
      { name: ROUTER_STATE_VOLUME, mountPath: "/var/lib/kars" },
    ],
    securityContext: {
      runAsUser: ROUTER_UID,
      runAsGroup: ROUTER_UID,
      runAsNonRoot: true,
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    },
  };
}

/** Volumes the router sidecar needs (projected config, writable state). */
export function desiredRouterVolumes(): V1Volume[] {
  return [
    {
      name: ROUTER_CONFIG_VOLUME,
      projected: { sources: [{ configMap: { name: ROUTER_PROFILE_CONFIGMAP, optional: true } }] },
    },
    { name: ROUTER_STATE_VOLUME, emptyDir: {} },
  ];
}

/**
 * True when `actual` is exactly the injected container `expected` in every security-relevant field
 * (image, command, args, securityContext). Fields the apiserver defaults (imagePullPolicy,
 * terminationMessagePath, resources) are not compared.
 */
export function isExactInjected(actual: V1Container, expected: V1Container): boolean {
  if (actual.name !== expected.name || actual.image !== expected.image) return false;
  const want = expectedCanonical(expected);
  return canonical(actual.command) === want.command && canonical(actual.args) === want.args && canonical(actual.securityContext) === want.securityContext;
}

// The expected containers are rebuilt per check but always equal for one config: cache their
// canonical forms by image + name (admission runs this for every container of every sandbox pod).
const canonicalCache = new Map<string, { command: string; args: string; securityContext: string }>();
function expectedCanonical(c: V1Container): { command: string; args: string; securityContext: string } {
  const key = `${c.name}\u0000${c.image}`;
  let hit = canonicalCache.get(key);
  if (!hit) {
    hit = { command: canonical(c.command), args: canonical(c.args), securityContext: canonical(c.securityContext) };
    if (canonicalCache.size > 64) canonicalCache.clear();
    canonicalCache.set(key, hit);
  }
  return hit;
}

/** Structural equality of plain JSON values, insensitive to key order. */
export function sameJson(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(",")}}`;
  }
  return JSON.stringify(v ?? null);
}
