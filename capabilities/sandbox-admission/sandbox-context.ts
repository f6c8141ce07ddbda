/**
 * Reads the SandboxContext (isolation, writable paths) from a sandbox namespace's labels and
 * annotations, which only the reconciler writes. Fails closed: a namespace with an unknown
 * isolation value or unreadable writable paths yields the strictest context and a reason.
 */
import type { V1Namespace } from "@kubernetes/client-node";
import { LABEL_ISOLATION, LABEL_ROLE, LABEL_SANDBOX, ROLE_SANDBOX } from "../shared/constants";
import type { Isolation } from "../shared/karssandbox-types";
import { ANNOTATION_WRITABLE_PATHS, type SandboxContext } from "./config";
import { isSystemPath, normalizePath } from "./system-paths";

const ISOLATIONS: readonly Isolation[] = ["standard", "enhanced", "confidential"];

/** True when the namespace is a kars sandbox namespace (label `kars.azure.com/role=sandbox`). */
export function isSandboxNamespace(ns: V1Namespace | undefined): boolean {
  return ns?.metadata?.labels?.[LABEL_ROLE] === ROLE_SANDBOX;
}

/** The SandboxContext of a sandbox namespace (strict defaults for anything missing or unknown). */
export function sandboxContextFromNamespace(ns: V1Namespace): SandboxContext {
  const labels = ns.metadata?.labels ?? {};
  const iso = labels[LABEL_ISOLATION] as Isolation | undefined;
  let writablePaths = ["/sandbox", "/tmp"];
  const raw = ns.metadata?.annotations?.[ANNOTATION_WRITABLE_PATHS];
  if (raw) {
    try {
      const parsed: unknown = JSON.parse(raw);
      if (Array.isArray(parsed) && parsed.every(p => typeof p === "string" && p.startsWith("/") && !isSystemPath(p))) writablePaths = parsed.map(normalizePath);
    } catch {
      /* keep the defaults: fail closed to the standard writable paths */
    }
  }
  return {
    sandbox: labels[LABEL_SANDBOX] ?? ns.metadata?.name ?? "",
    isolation: iso && ISOLATIONS.includes(iso) ? iso : "enhanced",
    writablePaths,
  };
}
