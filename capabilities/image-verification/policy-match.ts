import type { KeyObject } from "node:crypto";
import { canonicalRegistry, type ImageReference } from "./image-reference";

/** One signing authority of a policy: a public key (keyless authorities are not handled yet). */
export interface KeyAuthority {
  /** Name for messages (the policy's authority name, or `key-<index>`). */
  name: string;
  key: KeyObject;
}

/**
 * A KarsImagePolicy as verification needs it (DESIGN §3): which images (globs) must be signed by
 * which authorities, and whether a failure refuses the pod (`enforce`) or only warns (`warn`).
 */
export interface ImagePolicy {
  /** The policy's name (cluster-scoped), for messages and the verdict cache. */
  name: string;
  /** metadata.generation: a changed policy is a new cache key. */
  generation: number;
  /** metadata.uid: a deleted and re-created policy (generation 1 again) is a new cache key too. */
  uid?: string;
  /** Globs over `registry/repository` (see imageGlobMatches). */
  images: readonly string[];
  /** An image matching `images` must carry a signature that one of these verifies. */
  authorities: readonly KeyAuthority[];
  mode: "enforce" | "warn";
  /** Why the policy cannot be used (a key that does not parse): a matching image is refused (fail closed). */
  problem?: string;
}

/**
 * Whether `pattern` matches the image's canonical name `registry/repository` (Docker's normalisation:
 * `busybox` is `docker.io/library/busybox`). `*` and `?` stay within one path component (any run,
 * one character); `**` crosses components. The tag and digest are never part of the match: a policy
 * cannot be side-stepped by naming another tag or a digest. Matching is on whole names.
 */
export function imageGlobMatches(pattern: string, ref: ImageReference): boolean {
  return globToRegExp(pattern).test(`${ref.registry}/${ref.repository}`);
}

/** The policies whose globs match `ref`, in the order given. */
export function matchingPolicies(policies: readonly ImagePolicy[], ref: ImageReference): ImagePolicy[] {
  return policies.filter(p => p.images.some(g => imageGlobMatches(g, ref)));
}

/**
 * A policy glob in the spelling images are matched in: its registry part as canonicalRegistry spells
 * hosts (case, trailing dot, `:443`, Docker Hub's aliases), and Docker's normalisation where it names no
 * registry (`busybox` → `docker.io/library/busybox`, `myorg/*` → `docker.io/myorg/*`). A glob that
 * starts with a wildcard is kept as written (it names no one registry).
 */
export function canonicalGlob(glob: string): string {
  if (/^[*?]/.test(glob)) return glob;
  const slash = glob.indexOf("/");
  if (slash < 0) return /[.:]/.test(glob) || glob === "localhost" ? glob : `docker.io/library/${glob}`;
  const first = glob.slice(0, slash);
  const rest = glob.slice(slash + 1);
  if (/[.:]/.test(first) || first === "localhost") {
    const host = canonicalRegistry(first);
    return `${host}/${host === "docker.io" && !rest.includes("/") && !/[*?]/.test(rest) ? `library/${rest}` : rest}`;
  }
  return `docker.io/${glob}`;
}

const compiled = new Map<string, RegExp>();

function globToRegExp(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (re) return re;
  let out = "^";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "*" && pattern[i + 1] === "*") {
      out += ".*";
      i++;
    } else if (c === "*") out += "[^/]*";
    else if (c === "?") out += "[^/]";
    else out += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  re = new RegExp(`${out}$`);
  if (compiled.size < 4096) compiled.set(pattern, re);
  return re;
}
