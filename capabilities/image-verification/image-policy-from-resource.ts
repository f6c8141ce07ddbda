import type { KarsImagePolicySpec } from "../shared/karsimagepolicy-types";
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
      problems.push(`spec.authorities[${i}].key.pem: not a public key (${(err as Error).message.split("\n")[0].slice(0, 120)})`);
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
