import { ImageVerificationError } from "./errors";
import { parseImageReference, type ImageReference } from "./image-reference";
import { matchingPolicies, type ImagePolicy } from "./policy-match";
import type { RegistryClient } from "./registry-client";
import { discoverSignatures, type FoundSignature } from "./signature-discovery";
import { TtlCache } from "./verdict-cache";
import { checkWithKey } from "./verify-key";

/** Default bound on one image's registry work (ms): well under a webhook's timeout (DESIGN §4). */
export const DEFAULT_VERIFY_DEADLINE_MS = 4000;
/** How long a verified verdict is reused (ms) and how many are kept. */
export const VERDICT_TTL_MS = 10 * 60_000;
/** How long a tag's digest is reused (ms): tags move, so briefly; what is pinned is what was verified. */
export const TAG_TTL_MS = 30_000;
const CACHE_ENTRIES = 10_000;

/** What verifying one image found. */
export interface ImageVerdict {
  /** The image as the pod named it. */
  image: string;
  /** The digest the signatures were checked for (the one the reference names, or its tag's). */
  digest: string;
  /**
   * The reference to run: the pod's own spelling pinned to `digest` (`name[:tag]@digest`; the kubelet
   * pulls by the digest), when a policy verified it; undefined when nothing was verified (no policy
   * matched, or only warn policies did and failed).
   */
  pinned?: string;
  /** For each matching policy: the authority whose key verified a signature. */
  verifiedBy: { policy: string; authority: string }[];
  /** Whether an `enforce` policy matches the image (then only its digest may run: see verifyPodImages' requirePinned). */
  enforced: boolean;
  /** Refusals of `warn` policies (the pod is admitted; the user is told). */
  warnings: string[];
}

/** What verifyImage needs, passed in. */
export interface VerifyImageDeps {
  client: RegistryClient;
  /** ms since epoch (cache expiry). */
  now: () => number;
  /** Bound on this image's registry work (ms); default DEFAULT_VERIFY_DEADLINE_MS. */
  deadlineMs?: number;
  /** Reused across calls (see createVerificationCaches). */
  caches?: VerificationCaches;
}

/** The verdict and tag caches, shared by every admission of one webhook process. */
export interface VerificationCaches {
  /** Verified verdicts only (failures are not kept): who verified the digest, per matching policy. */
  verdicts: TtlCache<{ policy: string; authority: string }[]>;
  tags: TtlCache<string>;
  /**
   * Registry work in flight (tag lookups, signature discovery), so that admissions of the same image at
   * once (a Deployment scaled to 50 replicas) share one round of reads.
   */
  inflight: Map<string, Promise<unknown>>;
}

/** Fresh, bounded caches (VERDICT_TTL_MS, TAG_TTL_MS). */
export function createVerificationCaches(): VerificationCaches {
  return { verdicts: new TtlCache(VERDICT_TTL_MS, CACHE_ENTRIES), tags: new TtlCache(TAG_TTL_MS, CACHE_ENTRIES), inflight: new Map() };
}

/**
 * `work()`, shared with every caller that asks for `key` while it runs (the first caller's deadline
 * bounds it: later callers have later deadlines). Its outcome, success or error, is not kept.
 */
function once<T>(inflight: Map<string, Promise<unknown>>, key: string, work: () => Promise<T>): Promise<T> {
  const running = inflight.get(key) as Promise<T> | undefined;
  if (running) return running;
  const p = work().finally(() => inflight.delete(key));
  inflight.set(key, p);
  return p;
}

/**
 * Cosign-on-admission for one image (DESIGN §4): resolves its tag to a digest at the registry, finds
 * the signatures stored for that digest (Sigstore bundles as OCI referrers, legacy `.sig` tags), and
 * requires, for every KarsImagePolicy whose globs match, a signature that one of the policy's
 * authorities verifies and whose signed payload names that same digest. The verified digest is
 * returned pinned into the reference, so the pod runs what was verified even if the tag moves.
 * A multi-arch image is verified by the digest its reference resolves to: the index's (what
 * `cosign sign image:tag` signs); signatures of single platform manifests are not looked up.
 * Images no policy matches are not looked up and not pinned; with no policy at all nothing is checked.
 *
 * Fails closed: an `enforce` policy that is not satisfied, a registry error, or the deadline throws
 * ImageVerificationError (its code is the reason class: no_signature, invalid_signature, timeout,
 * registry_unreachable, …; its message names the image, the digest when known, and the policy).
 * A `warn` policy's failure is returned in `warnings` instead; when only warn policies match, so is a
 * registry error or the deadline (the pod is admitted).
 */
export async function verifyImage(image: string, policies: readonly ImagePolicy[], deps: VerifyImageDeps): Promise<ImageVerdict> {
  // no policy at all: nothing to check, not even the reference's grammar (that is the kubelet's to refuse)
  if (policies.length === 0) return { image, digest: "", verifiedBy: [], enforced: false, warnings: [] };
  // with policies, a reference that does not parse cannot be matched to them: refused (fail closed; no runtime could pull it)
  const ref = parseImageReference(image);
  const matching = matchingPolicies(policies, ref);
  if (matching.length === 0) return { image, digest: ref.digest ?? "", verifiedBy: [], enforced: false, warnings: [] };
  const enforced = matching.some(p => p.mode === "enforce");
  const caches = deps.caches ?? createVerificationCaches();
  const signal = AbortSignal.timeout(deps.deadlineMs ?? DEFAULT_VERIFY_DEADLINE_MS);
  const names = matching.map(p => p.name);
  try {
    return await verifyMatched(image, ref, matching, enforced, names, caches, signal, deps);
  } catch (err) {
    // only warn policies match: what could not be checked is a warning too, the pod is admitted
    if (enforced || !(err instanceof ImageVerificationError)) throw err;
    return { image, digest: ref.digest ?? "", verifiedBy: [], enforced, warnings: [`${err.message.replace(/\)$/, ", mode warn)")}`] };
  }
}

/** verifyImage for the policies that match (see there); throws the refusal. */
async function verifyMatched(image: string, ref: ImageReference, matching: readonly ImagePolicy[], enforced: boolean, names: readonly string[], caches: VerificationCaches, signal: AbortSignal, deps: VerifyImageDeps): Promise<ImageVerdict> {
  const digest = await resolveDigest(ref, deps, caches, signal, image, names);
  const cacheKey = `${ref.registry}/${ref.repository}@${digest} ${matching.map(p => `${p.name}@${p.uid ?? ""}/${p.generation}`).join(",")}`;
  const cached = caches.verdicts.get(cacheKey, deps.now());
  if (cached) return { image, digest, pinned: pin(image, digest), verifiedBy: cached, enforced, warnings: [] };

  let signatures: FoundSignature[];
  try {
    signatures = await once(caches.inflight, `signatures ${ref.registry}/${ref.repository}@${digest}`, () => discoverSignatures(deps.client, ref.registry, ref.repository, digest, signal));
    // a digest the pod named that the registry does not have is a wrong digest, not an unsigned image
    if (signatures.length === 0 && ref.digest) await deps.client.resolveTag(ref.registry, ref.repository, ref.digest, signal);
  } catch (err) {
    throw named(err, image, digest, names);
  }
  const verifiedBy: { policy: string; authority: string }[] = [];
  const warnings: string[] = [];
  for (const policy of matching) {
    const outcome = satisfy(policy, signatures, digest);
    if ("authority" in outcome) verifiedBy.push({ policy: policy.name, authority: outcome.authority });
    else if (policy.mode === "warn") warnings.push(`${subject(image, digest)}: ${outcome.error.message} (KarsImagePolicy ${policy.name}, mode warn)`);
    else throw new ImageVerificationError(outcome.error.code, `${subject(image, digest)}: ${outcome.error.message} (KarsImagePolicy ${policy.name})`);
  }
  // every enforce policy is satisfied here; pinned when any policy verified the digest (a warn policy's
  // failure does not unpin it). Failures are not kept: a signature added later counts at once.
  if (warnings.length === 0) caches.verdicts.set(cacheKey, verifiedBy, deps.now());
  return { image, digest, ...(verifiedBy.length > 0 ? { pinned: pin(image, digest) } : {}), verifiedBy, enforced, warnings };
}

/** The digest the reference names, or its tag's (cached briefly); errors name the image. */
async function resolveDigest(ref: ImageReference, deps: VerifyImageDeps, caches: VerificationCaches, signal: AbortSignal, image: string, policies: readonly string[]): Promise<string> {
  if (ref.digest) return ref.digest;
  const key = `${ref.registry}/${ref.repository}:${ref.tag}`;
  const known = caches.tags.get(key, deps.now());
  if (known) return known;
  try {
    const digest = await once(caches.inflight, `tag ${key}`, () => deps.client.resolveTag(ref.registry, ref.repository, ref.tag as string, signal));
    caches.tags.set(key, digest, deps.now());
    return digest;
  } catch (err) {
    throw named(err, image, undefined, policies);
  }
}

/** The first authority of `policy` that verifies one of `signatures` for `digest`, or the refusal. */
function satisfy(policy: ImagePolicy, signatures: readonly FoundSignature[], digest: string): { authority: string } | { error: ImageVerificationError } {
  if (policy.problem) return { error: new ImageVerificationError("policy_invalid", `the policy cannot be used: ${policy.problem}`) };
  if (signatures.length === 0) return { error: new ImageVerificationError("no_signature", "no signature found (no Sigstore bundle referrer, no .sig tag)") };
  const reasons: string[] = [];
  let allUnsupported = true;
  for (const authority of policy.authorities) {
    for (const sig of signatures) {
      const check = checkWithKey(sig, digest, authority.key);
      if (check.ok) return { authority: authority.name };
      if (!check.unsupported) allUnsupported = false;
      reasons.push(`${sig.kind} ${sig.source.slice(0, 19)}…: ${check.reason} (authority ${authority.name})`);
    }
  }
  const code = allUnsupported ? "unsupported" : "invalid_signature";
  const lead = allUnsupported ? "no signature in a form kars verifies with a key" : "no signature verifies with the policy's authorities";
  return { error: new ImageVerificationError(code, `${lead}: ${reasons.slice(0, 4).join("; ")}${reasons.length > 4 ? `; and ${reasons.length - 4} more` : ""}`) };
}

/** The pod's spelling of the image, pinned: any digest it had is replaced by `digest`. */
function pin(image: string, digest: string): string {
  const at = image.indexOf("@");
  return `${at >= 0 ? image.slice(0, at) : image}@${digest}`;
}

/** `image <ref> (<digest>)` for messages; the digest only when the reference does not already name it. */
function subject(image: string, digest: string | undefined): string {
  return `image ${image}${digest && !image.endsWith(`@${digest}`) ? ` (${digest})` : ""}`;
}

/** A registry error re-thrown naming the image (and digest, when known) and the policies that made kars look. */
function named(err: unknown, image: string, digest: string | undefined, policies: readonly string[]): ImageVerificationError {
  const e = err instanceof ImageVerificationError ? err : new ImageVerificationError("registry_unreachable", (err as Error)?.message ?? String(err), { cause: err });
  // the client's messages start with registry/repository, which the image already names
  const ref = (() => {
    try {
      const r = parseImageReference(image);
      return `${r.registry}/${r.repository}: `;
    } catch {
      return "";
    }
  })();
  const what = ref && e.message.startsWith(ref) ? e.message.slice(ref.length) : e.message;
  return new ImageVerificationError(e.code, `${subject(image, digest)}: ${what} (KarsImagePolicy ${policies.join(", ")})`, { cause: e });
}
