import { ImageVerificationError } from "./errors";

/**
 * A parsed image reference: where the image lives and which version of it. Docker's normalisation
 * applies as the kubelet's does: no registry host means `docker.io`, and a one-component Docker Hub
 * repository is under `library/`.
 */
export interface ImageReference {
  /** Registry host[:port], e.g. `registry.example.com:5000`, `docker.io`. */
  registry: string;
  /** Repository path, e.g. `team/agent`, `library/busybox`. */
  repository: string;
  /** Tag, when the reference has one (`latest` when it has neither tag nor digest). */
  tag?: string;
  /** Content digest `algorithm:hex`, when the reference has one. */
  digest?: string;
}

/** Digests kars accepts: sha256 and sha512 in lower-case hex (OCI image spec, "Digests", registered algorithms). */
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
/** OCI distribution spec: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`. */
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
/** OCI distribution spec: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`. */
const REPOSITORY = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
/** A registry host: a DNS name or IPv4 address, or a bracketed IPv6 address, with an optional port. */
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,6})?$/;

/** Docker Hub's other names (the kubelet pulls all of them from Docker Hub). */
const DOCKER_HUB_ALIASES = new Set(["docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"]);

/**
 * One spelling per registry (`host[:port]`, also for a policy glob's host part), so that a policy's globs cannot be side-stepped by another spelling of
 * the same server: host names are case-insensitive (DNS), a trailing dot and https' default port
 * `:443` name the same server, and Docker Hub has several names.
 */
export function canonicalRegistry(host: string): string {
  let h = host.toLowerCase().replace(/\.(?=:|$)/, "");
  // the port as a number: `:0443` and `:443` are the same port, and https' default
  const port = /:(\d+)$/.exec(h);
  if (port) {
    const n = Number(port[1]);
    h = `${h.slice(0, port.index)}${n === 443 ? "" : `:${n}`}`;
  }
  return DOCKER_HUB_ALIASES.has(h) ? "docker.io" : h;
}

/** Whether `s` is a digest kars accepts (see DIGEST). */
export function isDigest(s: string): boolean {
  return DIGEST.test(s);
}

/**
 * Parses an image reference as a pod's `image` field carries it (`[host[:port]/]path[:tag][@digest]`).
 * The first component is a registry host when it has a `.` or `:`, or is `localhost` (Docker's rule);
 * the host is given one spelling (canonicalRegistry: lower case, no trailing dot, no `:443`, Docker
 * Hub's aliases as `docker.io`).
 * Throws ImageVerificationError `invalid_reference` naming what is wrong.
 */
export function parseImageReference(ref: string): ImageReference {
  const bad = (why: string) => new ImageVerificationError("invalid_reference", `image reference ${JSON.stringify(ref.slice(0, 300))}: ${why}`);
  if (ref.length === 0 || ref.length > 4096) throw bad("must be 1 to 4096 characters");
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) throw bad(`digest ${JSON.stringify(digest.slice(0, 140))} is not sha256:<64 hex> or sha512:<128 hex>`);
  }
  let registry = "docker.io";
  const slash = rest.indexOf("/");
  if (slash > 0) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost") {
      if (!HOST.test(first.replace(/\.(?=:|$)/, ""))) throw bad(`registry host ${JSON.stringify(first)} is not a host[:port]`);
      const port = /:(\d+)$/.exec(first);
      if (port && (Number(port[1]) < 1 || Number(port[1]) > 65535)) throw bad(`registry port ${port[1]} is not 1 to 65535`);
      registry = canonicalRegistry(first);
      rest = rest.slice(slash + 1);
    }
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(`tag ${JSON.stringify(tag.slice(0, 140))} is not a valid tag`);
  }
  if (!REPOSITORY.test(rest)) throw bad(`repository ${JSON.stringify(rest.slice(0, 300))} is not a valid repository name (lower-case components separated by /)`);
  const repository = registry === "docker.io" && !rest.includes("/") ? `library/${rest}` : rest;
  if (tag === undefined && digest === undefined) tag = "latest";
  return { registry, repository, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** The canonical form `registry/repository[:tag][@digest]` (what policies match and verdicts name). */
export function formatImageReference(r: ImageReference): string {
  return `${r.registry}/${r.repository}${r.tag !== undefined ? `:${r.tag}` : ""}${r.digest !== undefined ? `@${r.digest}` : ""}`;
}

/** The reference pinned to `digest`: `registry/repository@digest` (the tag dropped, as the kubelet then pulls by digest only). */
export function pinnedReference(r: ImageReference, digest: string): string {
  return `${r.registry}/${r.repository}@${digest}`;
}
