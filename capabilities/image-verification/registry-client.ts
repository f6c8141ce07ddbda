import { createHash } from "node:crypto";
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import { isIP } from "node:net";
import { classifyAddress } from "../../router/src/egress/ip-address";
import { Agent, request, type Dispatcher } from "undici";
import { isPlainHttpRegistry } from "./config";
import { ImageVerificationError } from "./errors";
import { isDigest } from "./image-reference";

/** Manifest media types kars asks for and reads (OCI image spec; Docker's v2 schema 2 equivalents). */
export const MANIFEST_MEDIA_TYPES = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
] as const;

/** Largest manifest read (bytes): the OCI distribution spec recommends registries accept at least 4 MiB. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Largest signature blob read (bytes): a simple-signing payload or a Sigstore bundle is a few KiB. */
export const MAX_SIGNATURE_BLOB_BYTES = 1024 * 1024;

/** Statuses of a registry without the referrers API (the spec says 404; others are seen in the wild). */
const NO_REFERRERS_API = new Set([400, 404, 405, 406, 501]);

/** Redirects followed for a blob download, and how many at most. */
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 3;

/** A manifest as the registry served it, checked against its digest. */
export interface FetchedManifest {
  /** `sha256:<hex>` of `bytes` (equal to the digest asked for, when one was asked for). */
  digest: string;
  /** The manifest's Content-Type (or its own `mediaType` field when the header is missing). */
  mediaType: string;
  bytes: Buffer;
  /** The parsed manifest (OCI image manifest or index shape). */
  json: OciManifest;
}

/** The fields of an OCI image manifest / index that kars reads (OCI image spec, manifest.md, image-index.md). */
export interface OciManifest {
  schemaVersion?: number;
  mediaType?: string;
  artifactType?: string;
  config?: OciDescriptor;
  layers?: OciDescriptor[];
  manifests?: OciDescriptor[];
  subject?: OciDescriptor;
  annotations?: Record<string, string>;
}

/** An OCI content descriptor (OCI image spec, descriptor.md). */
export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string; variant?: string };
}

/** Basic credentials for one registry (from an image pull secret), used for the token exchange. */
export interface RegistryCredentials {
  username: string;
  password: string;
}

/** How the client reaches registries. */
export interface RegistryClientOptions {
  /** Registries spoken to over plain http, `host:port` or `host:*` (tests on loopback); every other one over https. */
  plainHttp?: readonly string[];
  /**
   * Credentials per registry host[:port] (canonicalRegistry spelling), or a function giving the current
   * ones (a mounted file that may change). Never logged, never put in an error message.
   */
  credentials?: ReadonlyMap<string, RegistryCredentials> | (() => ReadonlyMap<string, RegistryCredentials>);
  /** undici dispatcher (tests, custom CAs); default: a keep-alive Agent. */
  dispatcher?: Dispatcher;
}

/**
 * A small client of the OCI distribution API (OCI distribution spec v1.1: "Pulling manifests",
 * "Pulling blobs", "Listing Referrers", and the Docker token flow of its 401 challenges) for what image
 * verification reads: manifests by tag or digest, small blobs, and referrers.
 * Every read is bounded by the caller's AbortSignal (its deadline) and by a size limit, and checked
 * against the digest it was asked for: a registry that serves other content than it was asked for is
 * refused (`digest_mismatch`), never believed. Fails closed: any error throws ImageVerificationError.
 */
export class RegistryClient {
  private readonly dispatcher: Dispatcher;
  /** Bearer tokens by `registry scope`, until their expiry (ms since epoch). */
  private readonly tokens = new Map<string, { token: string; expiresAt: number }>();

  /** For hosts a registry sends us to (token realm, blob storage): public addresses only (publicOnlyLookup). */
  private readonly followDispatcher: Dispatcher;

  constructor(private readonly options: RegistryClientOptions = {}) {
    this.dispatcher = options.dispatcher ?? new Agent({ keepAliveTimeout: 30_000, connections: 16 });
    this.followDispatcher = options.dispatcher ?? new Agent({ keepAliveTimeout: 30_000, connections: 16, connect: { lookup: publicOnlyLookup } });
  }

  /**
   * The dispatcher for a URL a registry named (its token realm, a blob redirect): the registry's own
   * host may be anywhere (an in-cluster registry is fine: the policy names it), but another host it
   * sends us to must be a public address — else anyone who runs a registry a policy covers could make
   * the webhook call cluster-internal endpoints (SSRF). Throws `registry_unreachable` for a non-public
   * address literal; names are checked as they resolve (publicOnlyLookup).
   */
  private dispatcherFor(url: URL, registry: string): Dispatcher {
    if (url.hostname === hostOf(registry)) return this.dispatcher;
    const literal = url.hostname.replace(/^\[|\]$/g, "");
    if (isIP(literal) && !classifyAddress(literal).public) {
      throw new ImageVerificationError("registry_unreachable", `${registry}: the registry sends kars to a non-public address (${url.hostname}); only its own host may be one`);
    }
    return this.followDispatcher;
  }

  /**
   * The digest a tag (or a digest: then whether it exists) names: a HEAD of the manifest, read from its Docker-Content-Digest header (OCI
   * distribution spec: "Checking if content exists"); a GET (digesting the bytes) when the header is
   * missing or not a digest. Trusting the header is safe here: the digest is only the name of what is
   * then verified and pinned — a registry naming another digest gets that digest's signatures checked
   * and that digest pinned, and the kubelet's runtime checks the content it pulls against it. A HEAD is
   * also not a pull for registries that count pulls (Docker Hub). Throws like `manifest`.
   */
  async resolveTag(registry: string, repository: string, tag: string, signal: AbortSignal): Promise<string> {
    const res = await this.send(registry, repository, `/v2/${repository}/manifests/${tag}`, signal, { accept: MANIFEST_MEDIA_TYPES.join(", ") }, "HEAD");
    await res.body.dump();
    if (res.statusCode === 404) throw new ImageVerificationError("image_not_found", `${registry}/${repository}: no manifest ${tag}`);
    const header = String(res.headers["docker-content-digest"] ?? "");
    if (res.statusCode === 200 && isDigest(header)) return header;
    return (await this.manifest(registry, repository, tag, signal)).digest;
  }

  /**
   * GETs a manifest by tag or digest. With a digest, the bytes must hash to it; with a tag, the digest
   * is computed from the bytes (a registry's Docker-Content-Digest header is not trusted).
   * Throws `image_not_found` on 404, and the other codes of `send`.
   */
  async manifest(registry: string, repository: string, reference: string, signal: AbortSignal, accept: readonly string[] = MANIFEST_MEDIA_TYPES, maxBytes = MAX_MANIFEST_BYTES): Promise<FetchedManifest> {
    const res = await this.send(registry, repository, `/v2/${repository}/manifests/${reference}`, signal, { accept: accept.join(", ") });
    if (res.statusCode === 404) {
      await res.body.dump();
      throw new ImageVerificationError("image_not_found", `${registry}/${repository}: no manifest ${reference}`);
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new ImageVerificationError("registry_unreachable", `${registry}/${repository}: GET manifest ${reference} answered ${res.statusCode}`);
    }
    const bytes = await readBounded(res.body, maxBytes, `${registry}/${repository} manifest ${reference}`, signal, registry);
    const digest = reference.includes(":") ? digestOf(bytes, reference) : sha256Digest(bytes);
    if (reference.includes(":") && reference !== digest) {
      throw new ImageVerificationError("digest_mismatch", `${registry}/${repository}: asked for manifest ${reference}, the registry served content with digest ${digest}`);
    }
    let json: OciManifest;
    try {
      json = JSON.parse(bytes.toString("utf8")) as OciManifest;
    } catch (err) {
      throw new ImageVerificationError("unsupported", `${registry}/${repository}: manifest ${reference} is not JSON`, { cause: err });
    }
    if (!json || typeof json !== "object" || Array.isArray(json)) throw new ImageVerificationError("unsupported", `${registry}/${repository}: manifest ${reference} is not a JSON object`);
    const header = String(res.headers["content-type"] ?? "").split(";")[0].trim();
    return { digest, mediaType: header || json.mediaType || "", bytes, json };
  }

  /** GETs a blob by digest, at most `maxBytes`, checked against its digest. Throws like `manifest`. */
  async blob(registry: string, repository: string, digest: string, signal: AbortSignal, maxBytes = MAX_SIGNATURE_BLOB_BYTES): Promise<Buffer> {
    let res = await this.send(registry, repository, `/v2/${repository}/blobs/${digest}`, signal, {});
    // registries often redirect blob downloads to storage: followed (a few hops), without our credentials, https only
    let from = new URL(`${this.origin(registry)}/v2/${repository}/blobs/${digest}`);
    for (let hop = 0; REDIRECT_STATUSES.has(res.statusCode) && hop < MAX_REDIRECTS; hop++) {
      const location = String(res.headers.location ?? "");
      await res.body.dump();
      let to: URL;
      try {
        to = new URL(location, from);
      } catch (err) {
        throw new ImageVerificationError("registry_unreachable", `${registry}/${repository}: blob ${digest} redirects to a location that is not a URL`, { cause: err });
      }
      if (to.protocol !== "https:" && !(to.protocol === "http:" && to.origin === from.origin)) {
        throw new ImageVerificationError("registry_unreachable", `${registry}/${repository}: blob ${digest} redirects to ${to.protocol} ${to.host}, not https`);
      }
      res = await this.get(to.toString(), {}, signal, registry, "GET", this.dispatcherFor(to, registry));
      from = to;
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      if (res.statusCode === 404) throw new ImageVerificationError("image_not_found", `${registry}/${repository}: no blob ${digest}`);
      throw new ImageVerificationError("registry_unreachable", `${registry}/${repository}: GET blob ${digest} answered ${res.statusCode}`);
    }
    const bytes = await readBounded(res.body, maxBytes, `${registry}/${repository} blob ${digest}`, signal, registry);
    const actual = digestOf(bytes, digest);
    if (actual !== digest) throw new ImageVerificationError("digest_mismatch", `${registry}/${repository}: blob ${digest} has other content (digest ${actual})`);
    return bytes;
  }

  /**
   * The referrers of `digest` with `artifactType` (OCI distribution spec v1.1 "Listing Referrers"):
   * the referrers API when the registry has it, else the referrers tag schema (`sha256-<hex>` tag
   * holding an index). Returns the descriptors (possibly none).
   */
  async referrers(registry: string, repository: string, digest: string, artifactType: string, signal: AbortSignal): Promise<OciDescriptor[]> {
    const res = await this.send(registry, repository, `/v2/${repository}/referrers/${digest}?artifactType=${encodeURIComponent(artifactType)}`, signal, { accept: "application/vnd.oci.image.index.v1+json" });
    let index: OciManifest | undefined;
    if (res.statusCode === 200) {
      const bytes = await readBounded(res.body, MAX_MANIFEST_BYTES, `${registry}/${repository} referrers of ${digest}`, signal, registry);
      try {
        index = JSON.parse(bytes.toString("utf8")) as OciManifest;
      } catch (err) {
        throw new ImageVerificationError("unsupported", `${registry}/${repository}: the referrers of ${digest} are not JSON`, { cause: err });
      }
    } else if (NO_REFERRERS_API.has(res.statusCode)) {
      await res.body.dump();
      // no referrers API (404 per the spec; some registries say 400, 405, 406 or 501): the fallback tag schema
      try {
        index = (await this.manifest(registry, repository, digest.replace(":", "-"), signal, ["application/vnd.oci.image.index.v1+json"])).json;
      } catch (err) {
        if (err instanceof ImageVerificationError && err.code === "image_not_found") return [];
        throw err;
      }
    } else {
      await res.body.dump();
      throw new ImageVerificationError("registry_unreachable", `${registry}/${repository}: GET referrers of ${digest} answered ${res.statusCode}`);
    }
    // a registry may ignore the filter (it says so in OCI-Filters-Applied); filter here in any case
    return (index?.manifests ?? []).filter(d => d && typeof d === "object" && d.artifactType === artifactType && typeof d.digest === "string");
  }

  /**
   * Sends one GET, answering a 401 Bearer challenge once with a token for `repository:pull` (Docker
   * registry token authentication; anonymous, or with basic credentials). Returns the response (body
   * unread) for 200, 404 and other statuses; throws `registry_unauthorized` when the registry still
   * says 401/403, `timeout` when `signal` fired, `registry_unreachable` for a connection error.
   */
  private async send(registry: string, repository: string, pathAndQuery: string, signal: AbortSignal, headers: Record<string, string>, method: "GET" | "HEAD" = "GET"): Promise<Dispatcher.ResponseData<unknown>> {
    const url = `${this.origin(registry)}${pathAndQuery}`;
    const scopeKey = `${registry} repository:${repository}:pull`;
    const cached = this.tokens.get(scopeKey);
    const auth: Record<string, string> = cached && cached.expiresAt > Date.now() ? { authorization: `Bearer ${cached.token}` } : {};
    let res = await this.get(url, { ...headers, ...auth }, signal, registry, method);
    if (res.statusCode === 401) {
      const challenge = String(res.headers["www-authenticate"] ?? "");
      await res.body.dump();
      const creds = this.credentialsFor(registry);
      if (/^\s*Basic\b/i.test(challenge) && creds) {
        // a registry that takes basic credentials on every request (no token service)
        res = await this.get(url, { ...headers, authorization: basicAuth(creds) }, signal, registry, method);
      } else {
        const token = await this.token(registry, repository, challenge, signal);
        this.tokens.set(scopeKey, token);
        res = await this.get(url, { ...headers, authorization: `Bearer ${token.token}` }, signal, registry, method);
      }
    }
    if (res.statusCode === 401 || res.statusCode === 403) {
      await res.body.dump();
      throw new ImageVerificationError("registry_unauthorized", `${registry}/${repository}: the registry refused access (${res.statusCode})`);
    }
    return res;
  }

  private async get(url: string, headers: Record<string, string>, signal: AbortSignal, registry: string, method: "GET" | "HEAD" = "GET", dispatcher = this.dispatcher): Promise<Dispatcher.ResponseData<unknown>> {
    try {
      return await request(url, { method, headers, signal, dispatcher });
    } catch (err) {
      throw transportError(err, signal, registry);
    }
  }

  /** Docker token flow: GET realm?service=…&scope=repository:<repo>:pull, with basic credentials when configured. */
  private async token(registry: string, repository: string, challenge: string, signal: AbortSignal): Promise<{ token: string; expiresAt: number }> {
    const params = parseBearerChallenge(challenge);
    if (!params?.realm) throw new ImageVerificationError("registry_unauthorized", `${registry}/${repository}: the registry asks for authentication kars does not speak (${challenge.split(" ")[0] || "no challenge"})`);
    let realm: URL;
    try {
      realm = new URL(params.realm);
    } catch (err) {
      throw new ImageVerificationError("registry_unauthorized", `${registry}: token realm is not a URL`, { cause: err });
    }
    // a token endpoint over plain http would carry the registry password in clear: only where the registry itself is plain http (tests)
    if (realm.protocol !== "https:" && !(realm.protocol === "http:" && this.scheme(registry) === "http")) {
      throw new ImageVerificationError("registry_unauthorized", `${registry}: token realm ${realm.origin} is not https`);
    }
    if (params.service) realm.searchParams.set("service", params.service);
    realm.searchParams.set("scope", `repository:${repository}:pull`);
    const creds = this.credentialsFor(registry);
    const headers: Record<string, string> = creds ? { authorization: basicAuth(creds) } : {};
    const res = await this.get(realm.toString(), headers, signal, registry, "GET", this.dispatcherFor(realm, registry));
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new ImageVerificationError("registry_unauthorized", `${registry}: the token endpoint answered ${res.statusCode}`);
    }
    const body = (await readBounded(res.body, 64 * 1024, `${registry} token`, signal, registry)).toString("utf8");
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      parsed = JSON.parse(body) as typeof parsed;
    } catch (err) {
      throw new ImageVerificationError("registry_unauthorized", `${registry}: the token endpoint's answer is not JSON`, { cause: err });
    }
    const token = typeof parsed.token === "string" ? parsed.token : typeof parsed.access_token === "string" ? parsed.access_token : undefined;
    if (!token) throw new ImageVerificationError("registry_unauthorized", `${registry}: the token endpoint gave no token`);
    // Docker's token spec: 60 s when not given; refreshed 10 s early
    const seconds = typeof parsed.expires_in === "number" && parsed.expires_in > 0 ? parsed.expires_in : 60;
    return { token, expiresAt: Date.now() + Math.max(0, seconds - 10) * 1000 };
  }

  private credentialsFor(registry: string): RegistryCredentials | undefined {
    const c = this.options.credentials;
    return (typeof c === "function" ? c() : c)?.get(registry);
  }

  /** Where the registry's API is: Docker Hub's (`docker.io`) is served at registry-1.docker.io. */
  private origin(registry: string): string {
    return `${this.scheme(registry)}://${registry === "docker.io" ? "registry-1.docker.io" : registry}`;
  }

  private scheme(registry: string): "http" | "https" {
    return isPlainHttpRegistry(registry, this.options.plainHttp ?? []) ? "http" : "https";
  }

  /** Closes the connections this client opened (not a dispatcher that was passed in). */
  async close(): Promise<void> {
    if (!this.options.dispatcher) await Promise.all([this.dispatcher.close(), this.followDispatcher.close()]);
  }
}

/** The host name of `host[:port]` (brackets of an IPv6 literal kept, as URL.hostname has them). */
function hostOf(registry: string): string {
  return registry.startsWith("[") ? registry.slice(0, registry.indexOf("]") + 1) : registry.replace(/:\d+$/, "");
}

/**
 * A `lookup` for net.connect that refuses a name resolving to any non-public address (loopback,
 * RFC 1918, link-local incl. 169.254.169.254, CGNAT, …: router/src/egress/ip-address.ts), with the
 * error code EKARS_NON_PUBLIC. Checked on the addresses the connection then uses, so a name cannot
 * resolve one way for a check and another for the connection.
 */
function publicOnlyLookup(hostname: string, options: LookupOptions, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, "");
    const bad = addresses.find(a => !classifyAddress(a.address).public);
    if (bad || addresses.length === 0) return callback(Object.assign(new Error(`${hostname} resolves to a non-public address`), { code: "EKARS_NON_PUBLIC" }), "");
    if (options.all) return callback(null, addresses);
    callback(null, addresses[0].address, addresses[0].family);
  });
}

function basicAuth(c: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}`;
}

/** `sha256:<hex>` of `bytes`. */
export function sha256Digest(bytes: Buffer): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** The digest of `bytes` in the algorithm `expected` names (sha256 or sha512; anything else hashes with sha256, and so mismatches). */
function digestOf(bytes: Buffer, expected: string): string {
  const alg = expected.startsWith("sha512:") ? "sha512" : "sha256";
  return `${alg}:${createHash(alg).update(bytes).digest("hex")}`;
}

/**
 * Parses a `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` challenge (RFC 6750 §3 and
 * Docker's token authentication spec); null when it is not a Bearer challenge.
 */
export function parseBearerChallenge(header: string): Record<string, string> | null {
  const m = /^\s*Bearer\s+(.*)$/i.exec(header);
  if (!m) return null;
  const out: Record<string, string> = {};
  for (const p of m[1].matchAll(/([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g)) out[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : p[3];
  return out;
}

/**
 * Reads a body to the end, refusing more than `max` bytes (the body is destroyed then). A read cut by
 * the deadline is `timeout`; a connection lost meanwhile is `registry_unreachable`.
 */
async function readBounded(body: Dispatcher.ResponseData["body"], max: number, what: string, signal: AbortSignal, registry: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      size += (chunk as Buffer).length;
      if (size > max) {
        body.destroy();
        throw new ImageVerificationError("unsupported", `${what} is larger than ${max} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    throw err instanceof ImageVerificationError ? err : transportError(err, signal, registry);
  }
  return Buffer.concat(chunks);
}

/**
 * A failed request or read as an ImageVerificationError: `timeout` when the deadline fired, else
 * `registry_unreachable` with the error's code only. The message reaches whoever created the pod, so
 * it carries no address or text of the underlying error (no network reconnaissance through denials);
 * the error itself is the cause, for the controller's log.
 */
function transportError(err: unknown, signal: AbortSignal, registry: string): ImageVerificationError {
  if (signal.aborted) return new ImageVerificationError("timeout", `${registry}: no answer before the verification deadline`, { cause: err });
  let code: unknown;
  for (let e: unknown = err, depth = 0; e && typeof e === "object" && depth < 4 && code === undefined; e = (e as { cause?: unknown }).cause, depth++) code = (e as { code?: unknown }).code;
  const named = typeof code === "string" && /^[A-Z_]{2,40}$/.test(code) ? ` (${code})` : "";
  // https spoken to a plain-http server: the TLS library cannot parse its answer
  const hint = code === "ERR_SSL_WRONG_VERSION_NUMBER" || code === "EPROTO" ? "; if it serves plain http (a test registry), name it in KARS_IMAGE_PLAIN_HTTP_REGISTRIES" : "";
  return new ImageVerificationError("registry_unreachable", `${registry}: cannot reach the registry${named}${hint}`, { cause: err });
}
