// The egress decision (DESIGN §6): normalise host → blocklist → Strict: allowlist ∪ active
// EgressApprovals, else deny / Learn: allow and record → resolve → refuse non-public addresses →
// dial the address that was checked. Pure except for the resolver passed in.
// Fails closed: no configuration, an unparseable host, a failed resolution, or any non-public
// address among the answers is a denial.

import type { Blocklist } from "./blocklist";
import type { EgressApprovalGrant, EgressEndpoint, EgressProfile } from "./config";
import { normaliseHost, type CanonicalHost } from "./host";
import { classifyAddress, type NonPublicReason } from "./ip-address";

/** How the request reached the proxy; decides the port that needs no explicit allowance. */
export type EgressVia =
  /** HTTP CONNECT (RFC 9110 §9.3.6); standard port 443. */
  | "connect"
  /** Absolute-form plain HTTP through the proxy (RFC 9112 §3.2.2); standard port 80. */
  | "http"
  /** Transparently redirected TLS, host from the ClientHello SNI; port 443. */
  | "tls"
  /** Transparently redirected plain HTTP, host from the Host header; standard port 80. */
  | "http_transparent";

/** Reasons a request is allowed. */
export type AllowReason = "allowlisted" | "approved" | "learn";
/** Reasons a request is denied; bounded (metric label and audit field). */
export type DenyReason =
  | "no_config"
  | "invalid_host"
  | "blocklisted"
  | "port_not_allowed"
  | "not_allowlisted"
  | "resolve_failed"
  | "non_public_address"
  | "sni_missing"
  | "sni_mismatch"
  /** The ClientHello hides its real server name (Encrypted Client Hello) and the profile refuses that. */
  | "encrypted_client_hello"
  | "not_tls"
  | "bad_request"
  | "tunnel_limit"
  /** The decision could not be recorded (its audit record, log line or count threw): refused, fail closed. */
  | "audit_failed";

/** What is being asked for. `host` is raw attacker input; `port` already parsed (1..65535). */
export interface EgressRequest {
  host: string;
  port: number;
  via: EgressVia;
}

/** The configuration a decision reads; `profile` undefined means no valid profile.json yet. */
export interface EgressPolicySnapshot {
  profile: EgressProfile | undefined;
  approvals: readonly EgressApprovalGrant[];
  blocklist: Blocklist;
}

/** Outcome of the policy stage (before resolution). */
export type PolicyDecision =
  | { allow: true; reason: AllowReason; host: CanonicalHost; port: number; approval?: string; until?: number }
  | { allow: false; reason: DenyReason; host?: string; port: number; detail?: string };

/**
 * Final outcome: on allow, `address` is the one checked address to dial (IP literal); `approval` names
 * the EgressApproval that allowed it and `until` (ms since the epoch) is when that approval expires: a
 * connection it allowed ends then.
 */
export type EgressDecision =
  | { allow: true; reason: AllowReason; host: string; port: number; address: string; approval?: string; until?: number }
  | { allow: false; reason: DenyReason; host?: string; port: number; detail?: string };

/**
 * Resolves a DNS name to IP literals; rejects on failure. A caching resolver (dns-cache.ts) also
 * offers `cached(name)`: the fresh cached answer, or undefined — which lets a decision complete
 * synchronously, without a promise, on the proxy's hot path.
 */
export type Resolver = ((name: string) => Promise<string[]>) & { cached?: (name: string) => string[] | undefined };

/** The port allowed without an explicit endpoint for each way in. */
export function standardPort(via: EgressVia): number {
  return via === "connect" || via === "tls" ? 443 : 80;
}

/** True when `endpoint` names `host` (exactly, or as a `*.` subdomain wildcard) and `port`. */
export function endpointMatches(endpoint: EgressEndpoint, host: string, port: number): boolean {
  if (endpoint.port !== port) return false;
  if (endpoint.host.startsWith("*.")) return host.endsWith(endpoint.host.slice(1)) && host.length > endpoint.host.length - 1;
  return endpoint.host === host;
}

/**
 * Policy stage: normalise, blocklist, port rule, Strict allowlist/approvals or Learn.
 * `now` is ms since the epoch (approval expiry is `expiresAt > now`).
 */
export function decideByPolicy(req: EgressRequest, snapshot: EgressPolicySnapshot, now: number): PolicyDecision {
  const { port } = req;
  if (!snapshot.profile) return { allow: false, reason: "no_config", port, detail: "no usable egress configuration yet: profile.json not loaded, or the blocklist never read (see /readyz)" };
  const normalised = normaliseHost(req.host);
  if (!normalised.ok) return { allow: false, reason: "invalid_host", port, detail: normalised.reason };
  const host = normalised.host;
  const blocked = snapshot.blocklist.match(host.name);
  if (blocked.matched) {
    return { allow: false, reason: "blocklisted", host: host.name, port, detail: `${blocked.kind} entry ${blocked.entry}` };
  }
  // a tunnel to port 80 would carry plain HTTP whose requests (and their Host) are never decided one by one
  if (req.via === "connect" && port === 80) {
    return { allow: false, reason: "port_not_allowed", host: host.name, port, detail: "CONNECT to port 80: send plain HTTP through the proxy, where each request is decided" };
  }
  const allowlisted = snapshot.profile.allowedEndpoints.some((e) => endpointMatches(e, host.name, port));
  const approval = allowlisted
    ? undefined
    : snapshot.approvals.find((a) => a.expiresAt > now && a.hosts.some((e) => endpointMatches(e, host.name, port)));
  if (allowlisted) return { allow: true, reason: "allowlisted", host, port };
  if (approval) return { allow: true, reason: "approved", host, port, approval: approval.name, until: approval.expiresAt };
  if (port !== standardPort(req.via)) {
    return { allow: false, reason: "port_not_allowed", host: host.name, port, detail: `port ${port} is not named by an allowed endpoint` };
  }
  if (snapshot.profile.egressMode === "Learn") return { allow: true, reason: "learn", host, port };
  return { allow: false, reason: "not_allowlisted", host: host.name, port };
}

/**
 * Address stage: every address must be public (one private answer among public ones is the DNS
 * rebinding shape, and is refused). Returns the first address, which is then the only one dialled.
 */
export function checkAddresses(addresses: readonly string[]): { ok: true; address: string } | { ok: false; detail: string } {
  if (addresses.length === 0) return { ok: false, detail: "no addresses" };
  for (const address of addresses) {
    const c = classifyAddress(address);
    if (!c.public) return { ok: false, detail: `${address} is ${c.reason satisfies NonPublicReason}` };
  }
  return { ok: true, address: addresses[0] };
}

/**
 * The whole decision when it needs no waiting: a denial by policy, an IP-literal host, or a name
 * whose fresh answer `resolve.cached` holds. Otherwise `{ resolveName }`: the policy stage allowed
 * a name that must be resolved first (finish with {@link decideEgress}). Never throws.
 */
export function decideEgressNow(
  req: EgressRequest,
  snapshot: EgressPolicySnapshot,
  now: number,
  resolve: Resolver,
): EgressDecision | { resolveName: Extract<PolicyDecision, { allow: true }> } {
  const policy = decideByPolicy(req, snapshot, now);
  if (!policy.allow) return policy;
  if (policy.host.kind !== "name") return checkedDecision(policy, [policy.host.name]);
  const cached = resolve.cached?.(policy.host.name);
  return cached ? checkedDecision(policy, cached) : { resolveName: policy };
}

/**
 * The whole decision: policy stage, then (for names) resolution through `resolve`, then the address
 * stage. IP-literal hosts are checked as they are, never resolved. Never throws.
 */
export async function decideEgress(
  req: EgressRequest,
  snapshot: EgressPolicySnapshot,
  now: number,
  resolve: Resolver,
): Promise<EgressDecision> {
  const immediate = decideEgressNow(req, snapshot, now, resolve);
  if (!("resolveName" in immediate)) return immediate;
  const policy = immediate.resolveName;
  let addresses: string[];
  try {
    addresses = await resolve(policy.host.name);
  } catch (err) {
    return { allow: false, reason: "resolve_failed", host: policy.host.name, port: policy.port, detail: (err as { code?: string }).code ?? "error" };
  }
  return checkedDecision(policy, addresses);
}

/** The address stage of an allowed policy decision: the one checked address, or non_public_address. */
function checkedDecision(policy: Extract<PolicyDecision, { allow: true }>, addresses: readonly string[]): EgressDecision {
  const { host, port } = policy;
  const checked = checkAddresses(addresses);
  if (!checked.ok) return { allow: false, reason: "non_public_address", host: host.name, port, detail: checked.detail };
  const decision: EgressDecision = { allow: true, reason: policy.reason, host: host.name, port, address: checked.address };
  if (policy.approval) decision.approval = policy.approval;
  if (policy.until !== undefined) decision.until = policy.until;
  return decision;
}
