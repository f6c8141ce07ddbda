import type { KarsImagePolicySpec } from "../shared/karsimagepolicy-types";
import type { Violation } from "../shared/violation";
import { canonicalGlob, type ImagePolicy, type KeyAuthority } from "./policy-match";
import { parsePublicKey } from "./verify-key";

/** A KarsImagePolicy object as the API serves it (the fields read here). */
export interface KarsImagePolicyResource {
  metadata?: { name?: string; generation?: number; uid?: string };
  spec?: Partial<KarsImagePolicySpec>;
}

/**
 * The ImagePolicy of a KarsImagePolicy object (pure). The CRD's schema already refuses most bad
 * input; what it cannot judge — a PEM that does not parse as a public key, a missing spec on an object
 * stored before the schema — becomes the policy's `problem`, so the images it matches are refused
 * (fail closed) with that reason, never let through unverified. Globs are put in the spelling images
 * are matched in (canonicalGlob).
 */
export function imagePolicyFromResource(obj: KarsImagePolicyResource): ImagePolicy {
  const name = obj.metadata?.name ?? "";
  const spec = obj.spec ?? {};
  const problems: string[] = [];
  const authorities: KeyAuthority[] = [];
  (spec.authorities ?? []).forEach((a, i) => {
    const authority = a?.name || `key-${i}`;
    try {
      authorities.push({ name: authority, key: parsePublicKey(String(a?.key?.pem ?? "")) });
    } catch (err) {
      problems.push(`spec.authorities[${i}].key.pem: ${pemProblem(err)}`);
    }
  });
  if (authorities.length === 0 && problems.length === 0) problems.push("spec.authorities: none");
  const images = Array.isArray(spec.images) ? spec.images.filter((g): g is string => typeof g === "string").map(canonicalGlob) : [];
  return {
    name,
    generation: obj.metadata?.generation ?? 0,
    ...(obj.metadata?.uid ? { uid: obj.metadata.uid } : {}),
    images,
    authorities,
    mode: spec.mode === "warn" ? "warn" : "enforce",
    ...(problems.length > 0 ? { problem: problems.join("; ") } : {}),
  };
}

/** Why a PEM did not parse, and what to do about it (the library's words alone are OpenSSL codes). */
function pemProblem(err: unknown): string {
  const why = (err as Error)?.message?.split("\n")[0].replace(/^error:[0-9A-F]+:/, "").slice(0, 100) ?? "unreadable";
  return `not a PEM public key (${why}): paste cosign.pub whole, with its line breaks (in YAML: pem: |)`;
}

/**
 * What is wrong with a KarsImagePolicy's spec beyond its schema (for the admission check of the
 * policy itself, so that a user learns at `kubectl apply`, not when pods are refused): keys that do
 * not parse, and globs that can never match (a URL scheme, a tag or digest: globs match
 * registry/repository only). Warnings name globs that match otherwise than written (Docker
 * normalisation: `myorg/*` is `docker.io/myorg/*`).
 */
export function imagePolicyProblems(spec: Partial<KarsImagePolicySpec> | undefined): { violations: Violation[]; warnings: string[] } {
  const violations: Violation[] = [];
  const warnings: string[] = [];
  const rule = "kars image policy";
  (spec?.authorities ?? []).forEach((a, i) => {
    try {
      parsePublicKey(String(a?.key?.pem ?? ""));
    } catch (err) {
      violations.push({ path: `spec.authorities[${i}].key.pem`, message: pemProblem(err), rule });
    }
  });
  (spec?.images ?? []).forEach((g, i) => {
    if (typeof g !== "string") return;
    const path = `spec.images[${i}]`;
    if (g.includes("://")) violations.push({ path, message: `${JSON.stringify(g)} names a URL scheme; write registry/repository globs, e.g. ghcr.io/org/**`, rule });
    else if (/^[^/]*\/.*[:@]/.test(g) || g.includes("@")) violations.push({ path, message: `${JSON.stringify(g)} names a tag or digest; globs match registry/repository only (every tag and digest of it)`, rule });
    else if (canonicalGlob(g) !== g) warnings.push(`${path}: ${JSON.stringify(g)} is matched as ${JSON.stringify(canonicalGlob(g))}`);
  });
  return { violations, warnings };
}
