/**
 * The seccomp profile and runtime class each isolation level requires (DESIGN §2 "Isolation").
 */
import type { V1SeccompProfile } from "@kubernetes/client-node";
import type { Isolation } from "../shared/karssandbox-types";

/** Path of kars-strict under the kubelet's seccomp root (installed by the seccomp DaemonSet). */
export const KARS_STRICT_LOCALHOST_PROFILE = "profiles/kars-strict.json";

/** `enhanced` → Localhost kars-strict; `standard` and `confidential` → RuntimeDefault. */
export function requiredSeccompProfile(isolation: Isolation): V1SeccompProfile {
  return isolation === "enhanced"
    ? { type: "Localhost", localhostProfile: KARS_STRICT_LOCALHOST_PROFILE }
    : { type: "RuntimeDefault" };
}

/** Human form of a seccomp profile for messages, e.g. `Localhost profiles/kars-strict.json`. */
export function describeSeccomp(p: V1SeccompProfile | undefined): string {
  if (!p) return "unset";
  return p.type === "Localhost" ? `Localhost ${p.localhostProfile ?? ""}`.trim() : p.type;
}
