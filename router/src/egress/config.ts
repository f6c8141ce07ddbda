// Parsing of the egress parts of the router configuration directory (DESIGN §6 "Router configuration
// directory"): profile.json (judged whole, as the inference side judges it; the proxy uses
// `egressMode`, `allowedEndpoints` and `encryptedClientHello`), approvals.json, blocklist-sources.json.
// Pure: text in, frozen typed value out, or an EgressConfigError naming the JSON path that is wrong.

import { parseProfile, ProfileError, type Profile } from "../config/profile";
import { canonicalEndpointHost } from "./host";

/** Egress mode of a sandbox (KarsSandbox `spec.networkPolicy.egressMode`). */
export type EgressMode = "Strict" | "Learn";

/**
 * An allowed destination. `host` is canonical (see `normaliseHost`), or `*.` + a canonical name,
 * meaning every subdomain of that name (not the name itself). `port` is 1..65535.
 */
export interface EgressEndpoint {
  readonly host: string;
  readonly port: number;
}

/**
 * What the proxy does with a TLS ClientHello that carries Encrypted Client Hello (client-hello.ts):
 * its SNI is only the outer, public name, so the real destination cannot be checked. `Refuse` closes
 * the connection (reason `encrypted_client_hello`); `Allow` relays it and counts it.
 */
export type EncryptedClientHelloPolicy = "Refuse" | "Allow";

/**
 * The Encrypted Client Hello policy when profile.json sets none: Refuse in Strict mode (fail closed: an
 * ECH tunnel could reach any site behind an allowlisted host's CDN), Allow in Learn mode (everything
 * is allowed there anyway). The reconciler writes the same default into the profiles it projects.
 */
export function defaultEncryptedClientHello(mode: EgressMode): EncryptedClientHelloPolicy {
  return mode === "Strict" ? "Refuse" : "Allow";
}

/** The egress fields of profile.json. */
export interface EgressProfile {
  readonly egressMode: EgressMode;
  readonly allowedEndpoints: readonly EgressEndpoint[];
  /** kars extension (KarsSandbox `spec.networkPolicy.encryptedClientHello`); absent: Refuse in Strict, Allow in Learn. */
  readonly encryptedClientHello: EncryptedClientHelloPolicy;
}

/** One active EgressApproval as projected into approvals.json. `expiresAt` in ms since the epoch. */
export interface EgressApprovalGrant {
  readonly name: string;
  readonly hosts: readonly EgressEndpoint[];
  readonly expiresAt: number;
}

/** blocklist-sources.json: where to refresh lists from, and how often (seconds). */
export interface BlocklistSources {
  readonly sources: readonly { readonly url: string }[];
  readonly periodSeconds: number;
}

/** Thrown by the parsers; `path` is a JSON path such as `allowedEndpoints[2].port`. */
export class EgressConfigError extends Error {
  constructor(
    readonly file: string,
    readonly path: string,
    message: string,
  ) {
    super(`${file}: ${path === "" ? "" : `${path}: `}${message}`);
    this.name = "EgressConfigError";
  }
}

const DEFAULT_PERIOD_SECONDS = 24 * 3600;
const MIN_PERIOD_SECONDS = 60;

function parseJson(file: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new EgressConfigError(file, "", `not valid JSON (${(err as Error).message})`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function parseEndpoint(file: string, path: string, v: unknown, defaultPort: number): EgressEndpoint {
  if (!isObject(v)) throw new EgressConfigError(file, path, "must be an object {host, port}");
  if (typeof v.host !== "string") throw new EgressConfigError(file, `${path}.host`, "must be a string");
  const port = v.port === undefined ? defaultPort : v.port;
  if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new EgressConfigError(file, `${path}.port`, `must be an integer 1..65535, found ${JSON.stringify(port)}`);
  }
  const c = canonicalEndpointHost(v.host);
  if (!c.ok) throw new EgressConfigError(file, `${path}.host`, c.reason);
  return Object.freeze({ host: c.host, port });
}

/**
 * Parses profile.json for the egress proxy. The whole file is judged as the inference side judges it
 * (config/profile.ts parseProfile: the JSON Schema shared with the reconciler, then the rules across
 * fields, allowlist hosts included), so that the two readers of one file never apply different
 * versions of it: a file one side rejects, both reject, and both keep their last good version (a
 * profile.json missing `egressMode` must not turn a Strict proxy into a Learn one). Then: hosts made
 * canonical, endpoint ports defaulted to 443, and `encryptedClientHello` resolved when unset
 * (defaultEncryptedClientHello).
 * Throws EgressConfigError naming every bad field.
 */
export function parseEgressProfile(text: string, file = "profile.json"): EgressProfile {
  let profile: Profile;
  try {
    profile = parseProfile(text).profile;
  } catch (err) {
    if (err instanceof ProfileError) throw new EgressConfigError(file, "", err.problems.join("; "));
    throw err;
  }
  const mode = profile.egressMode;
  const allowedEndpoints = profile.allowedEndpoints.map((e, i) => parseEndpoint(file, `allowedEndpoints[${i}]`, e, 443));
  const ech = profile.encryptedClientHello ?? defaultEncryptedClientHello(mode);
  return Object.freeze({ egressMode: mode, allowedEndpoints: Object.freeze(allowedEndpoints), encryptedClientHello: ech });
}

/**
 * Parses approvals.json: `[{name, hosts[{host, port=443}], expiresAt}]`, `expiresAt` an RFC 3339
 * timestamp. Expired entries are kept (the decision checks expiry against its clock).
 * Throws EgressConfigError naming the first bad field.
 */
export function parseApprovals(text: string, file = "approvals.json"): readonly EgressApprovalGrant[] {
  const doc = parseJson(file, text);
  if (!Array.isArray(doc)) throw new EgressConfigError(file, "", "must be a JSON array");
  const grants = doc.map((a, i): EgressApprovalGrant => {
    const path = `[${i}]`;
    if (!isObject(a)) throw new EgressConfigError(file, path, "must be an object");
    if (typeof a.name !== "string" || a.name === "") throw new EgressConfigError(file, `${path}.name`, "must be a non-empty string");
    if (!Array.isArray(a.hosts)) throw new EgressConfigError(file, `${path}.hosts`, "must be an array");
    const hosts = a.hosts.map((h, j) => parseEndpoint(file, `${path}.hosts[${j}]`, h, 443));
    const expiresAt = typeof a.expiresAt === "string" ? Date.parse(a.expiresAt) : NaN;
    if (!Number.isFinite(expiresAt)) {
      throw new EgressConfigError(file, `${path}.expiresAt`, `must be an RFC 3339 timestamp, found ${JSON.stringify(a.expiresAt)}`);
    }
    return Object.freeze({ name: a.name, hosts: Object.freeze(hosts), expiresAt });
  });
  return Object.freeze(grants);
}

/**
 * Parses blocklist-sources.json: `{sources: [url | {url}], periodSeconds?: number ≥ 60 (default
 * 86400)}`. URLs must be http(s). Throws EgressConfigError naming the first bad field.
 */
export function parseBlocklistSources(text: string, file = "blocklist-sources.json"): BlocklistSources {
  const doc = parseJson(file, text);
  if (!isObject(doc)) throw new EgressConfigError(file, "", "must be a JSON object");
  const list = doc.sources ?? [];
  if (!Array.isArray(list)) throw new EgressConfigError(file, "sources", "must be an array");
  const sources = list.map((s, i) => {
    const url = typeof s === "string" ? s : isObject(s) ? s.url : undefined;
    if (typeof url !== "string") throw new EgressConfigError(file, `sources[${i}]`, "must be a URL string or {url}");
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new EgressConfigError(file, `sources[${i}]`, "not a valid URL");
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw new EgressConfigError(file, `sources[${i}]`, `must be http or https, found ${parsed.protocol}`);
    }
    return Object.freeze({ url });
  });
  const period = doc.periodSeconds ?? DEFAULT_PERIOD_SECONDS;
  if (typeof period !== "number" || !Number.isFinite(period) || period < MIN_PERIOD_SECONDS) {
    throw new EgressConfigError(file, "periodSeconds", `must be a number ≥ ${MIN_PERIOD_SECONDS}`);
  }
  return Object.freeze({ sources: Object.freeze(sources), periodSeconds: period });
}
