/**
 * Admission settings: the images and commands of the containers kars injects, and the names used
 * for isolation (DESIGN §2). Parsed once from the controller's environment into a frozen object.
 */
import type { Isolation } from "../shared/karssandbox-types";

/** Admission configuration (frozen). */
export interface AdmissionConfig {
  /** Image of the egress-guard init container (ideally digest-pinned). */
  egressGuardImage: string;
  /** Image of the inference-router sidecar. */
  routerImage: string;
  /** RuntimeClass for isolation=confidential (Kata / SEV-SNP). */
  confidentialRuntimeClass: string;
  /** Cluster DNS service addresses the agent may query on port 53 (egress-guard, DESIGN §2). */
  clusterDns: string[];
}

/** Defaults for every AdmissionConfig field (overridden by KARS_* environment variables). */
export const DEFAULT_ADMISSION_CONFIG: AdmissionConfig = Object.freeze({
  egressGuardImage: "ghcr.io/azure/kars/egress-guard:0.1.0",
  routerImage: "ghcr.io/azure/kars/router:0.1.0",
  confidentialRuntimeClass: "kata-cc",
  clusterDns: Object.freeze(["10.96.0.10"]) as unknown as string[],
});

/**
 * Reads `KARS_EGRESS_GUARD_IMAGE`, `KARS_ROUTER_IMAGE`, `KARS_CONFIDENTIAL_RUNTIME_CLASS`,
 * `KARS_CLUSTER_DNS` (comma-separated IPs) over the defaults. Throws on an empty value.
 */
export function parseAdmissionConfig(env: Record<string, string | undefined>): AdmissionConfig {
  const pick = (key: string, fallback: string): string => {
    const v = env[key];
    if (v === undefined) return fallback;
    if (v.trim() === "") throw new Error(`${key}: must not be empty`);
    return v.trim();
  };
  const dns = pick("KARS_CLUSTER_DNS", DEFAULT_ADMISSION_CONFIG.clusterDns.join(","))
    .split(",")
    .map(s => s.trim())
    .filter(Boolean);
  return Object.freeze({
    egressGuardImage: pick("KARS_EGRESS_GUARD_IMAGE", DEFAULT_ADMISSION_CONFIG.egressGuardImage),
    routerImage: pick("KARS_ROUTER_IMAGE", DEFAULT_ADMISSION_CONFIG.routerImage),
    confidentialRuntimeClass: pick("KARS_CONFIDENTIAL_RUNTIME_CLASS", DEFAULT_ADMISSION_CONFIG.confidentialRuntimeClass),
    clusterDns: Object.freeze(dns) as unknown as string[],
  });
}

/**
 * What admission knows about the sandbox a pod belongs to, read from its namespace's labels and
 * annotations (written by the reconciler): isolation level and writable paths.
 */
export interface SandboxContext {
  sandbox: string;
  isolation: Isolation;
  writablePaths: string[];
}

/** Label/annotation keys on the sandbox namespace that carry the SandboxContext. */
export const ANNOTATION_WRITABLE_PATHS = "kars.azure.com/writable-paths";
