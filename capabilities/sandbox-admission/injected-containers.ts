/**
 * The two containers kars injects into every sandbox pod (DESIGN §2) and the exact-spec test that
 * recognises them. Recognition is by image + command + args + securityContext, never by name alone
 * (DESIGN §4): a user container that takes a reserved name with any other spec is refused.
 */
import type { V1Container, V1SecurityContext, V1Volume } from "@kubernetes/client-node";
import { EGRESS_GUARD, INFERENCE_ROUTER, ROUTER_UID, AGENT_UID } from "../shared/constants";
import type { AdmissionConfig } from "./config";
import { canonical } from "../shared/json-equal";

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
      { name: "KARS_DNS_SERVERS", value: cfg.clusterDns.join(",") },
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
    // The image's entrypoint is the router (router/Dockerfile); these are its arguments.
    args: ["--config-dir", "/etc/kars", "--state-dir", "/var/lib/kars"],
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

/** Container fields the apiserver fills in with defaults; ignored when recognising an injected container. */
const APISERVER_DEFAULTED = new Set(["imagePullPolicy", "terminationMessagePath", "terminationMessagePolicy"]);

/**
 * True when `actual` is exactly the injected container `expected`: every field equal (env, mounts,
 * probes, lifecycle, restartPolicy, workingDir, …) except the ones the apiserver defaults
 * (imagePullPolicy, terminationMessagePath/Policy, an empty `resources`, a port's TCP protocol).
 * Anything else a user adds to a reserved container makes it "not ours", and Validate refuses it.
 */
export function isExactInjected(actual: V1Container, expected: V1Container): boolean {
  if (actual.name !== expected.name || actual.image !== expected.image) return false;
  return canonical(withoutDefaults(actual)) === expectedCanonical(expected);
}

function withoutDefaults(c: V1Container): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c)) {
    if (APISERVER_DEFAULTED.has(k) || v === undefined) continue;
    if (k === "resources" && v && typeof v === "object" && Object.keys(v).length === 0) continue;
    if (k === "ports" && Array.isArray(v)) {
      out[k] = v.map(p => ({ ...p, protocol: p.protocol ?? "TCP" }));
      continue;
    }
    out[k] = v;
  }
  return out;
}

// The expected containers are rebuilt per check but always equal for one config: cache their
// canonical forms (admission runs this for every reserved-name container of every sandbox pod).
const canonicalCache = new Map<string, string>();
function expectedCanonical(c: V1Container): string {
  const key = JSON.stringify(c);
  let hit = canonicalCache.get(key);
  if (hit === undefined) {
    hit = canonical(withoutDefaults(c));
    if (canonicalCache.size > 64) canonicalCache.clear();
    canonicalCache.set(key, hit);
  }
  return hit;
}
