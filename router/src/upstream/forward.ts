import { RouterError } from "../errors/router-error";
import type { UpstreamSpec } from "../config/profile";
import type { InferenceApi } from "../policy/model-selection";
import type { CircuitBreakers } from "./circuit-breaker";
import { credentialValues } from "../inference/upstream-answer";
import { upstreamTarget } from "./request-target";
import type { UpstreamFetch, UpstreamResponse } from "./upstream-fetch";

/** Auth headers for an upstream (a key, or a Workload Identity token). Throws when none can be had. */
export type UpstreamAuth = (upstream: UpstreamSpec) => Promise<Record<string, string>>;

/** What forwarding needs: the I/O seams and the breakers (all passed in; see app.ts). */
export interface ForwardDeps {
  fetch: UpstreamFetch;
  auth: UpstreamAuth;
  breakers: CircuitBreakers;
  now: () => number;
}

/** The upstream that answered, and its (not yet read) response. */
export interface Forwarded {
  upstream: UpstreamSpec;
  response: UpstreamResponse;
  /** Upstreams tried before it that failed, with why (for logs and audit; no secrets). */
  skipped: SkippedUpstream[];
  /** The credential values sent to `upstream` (credentialValues), to redact by value from what it answers. */
  secrets: readonly string[];
}

/** Whether an upstream status means "try the next preference" (issue 3: fallback on 429/5xx). */
export function isFallbackStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/**
 * Error codes of a fetch that failed before any byte of the request could reach the upstream: name
 * resolution, the TCP connect, TLS verification. Only these (and a 429/5xx answer) make it safe to try
 * the next candidate and to charge nothing.
 */
const NEVER_SENT_CODES = new Set([
  "ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL", "UND_ERR_CONNECT_TIMEOUT",
  "ERR_TLS_CERT_ALTNAME_INVALID", "CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID", "DEPTH_ZERO_SELF_SIGNED_CERT", "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "UNABLE_TO_GET_ISSUER_CERT",
]);

/**
 * Whether a fetch error certainly came before the request was sent (its `code`, or its cause's, is in
 * NEVER_SENT_CODES). Anything else — a reset or close after connecting, a headers timeout, an unknown
 * error — may have come after the upstream received the request and began generating (and billing):
 * fail closed, that request is treated as processed.
 */
export function failedBeforeSending(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && typeof e === "object" && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && NEVER_SENT_CODES.has(code)) return true;
  }
  return false;
}

/**
 * The upstream connection failed after the request may have reached it (see failedBeforeSending): a
 * 502 `upstream_error` that is not retried on another deployment (the request may be generating
 * there), and whose reservation the caller charges in full (it may have been billed).
 */
export class UpstreamOutcomeUnknown extends RouterError {}

/**
 * An upstream that was not used: `reason` is coarse and safe to show the agent ("no credential",
 * "connection failed", "status 503", "circuit open"); `detail` is the underlying error text (an
 * identity provider's AADSTS message, a socket error naming internal addresses), for the router's
 * log only — the agent is untrusted and gets no reconnaissance from it.
 */
export interface SkippedUpstream {
  name: string;
  reason: string;
  detail?: string;
}

/**
 * Sends the request to the first candidate whose circuit is closed (or half-open) and that `permits`
 * (the PolicyEngine's verdict on that deployment's action; asked only when a candidate is about to be
 * tried), falling back to the next on 429, 5xx or a connection error before sending. A request is
 * never repeated to the same upstream, and never to another after a failure that may have come after
 * the upstream received it (UpstreamOutcomeUnknown, 502): only a refusal it answered (429/5xx) or a
 * connection that never carried it makes a retry elsewhere safe.
 * Throws RouterError `upstream_unavailable` (503) when no candidate could be tried or the last said 429,
 * `upstream_error` (502) otherwise. Messages name each upstream with a coarse reason; the
 * underlying errors travel as the `cause` (logged, never answered). Upstream error bodies are dumped,
 * never shown (they may echo headers).
 */
export async function forwardWithFallback(
  candidates: readonly UpstreamSpec[],
  api: InferenceApi,
  body: Record<string, unknown>,
  completionLimit: number | undefined,
  deps: ForwardDeps,
  permits: (upstream: UpstreamSpec) => string | null = () => null,
  signal?: AbortSignal,
): Promise<Forwarded> {
  const skipped: SkippedUpstream[] = [];
  let lastWasRateLimit = false;
  let tried = 0;
  for (const upstream of candidates) {
    if (!deps.breakers.allow(upstream.name, deps.now())) {
      skipped.push({ name: upstream.name, reason: "circuit open" });
      continue;
    }
    // every path below records the attempt's outcome on the breaker, or gives its half-open trial back
    let recorded = false;
    const record = (ok: boolean): void => {
      recorded = true;
      if (ok) deps.breakers.success(upstream.name);
      else deps.breakers.failure(upstream.name, deps.now());
    };
    try {
      const refusal = permits(upstream);
      if (refusal !== null) {
        skipped.push({ name: upstream.name, reason: "denied by policy", detail: refusal });
        continue;
      }
      let headers: Record<string, string>;
      try {
        headers = await deps.auth(upstream);
      } catch (err) {
        record(false);
        skipped.push({ name: upstream.name, reason: "no credential", detail: (err as Error).message });
        continue;
      }
      const target = upstreamTarget(upstream, api, body, completionLimit);
      const payload = JSON.stringify(target.body); // outside the try: failing here is not the upstream's failure
      tried++;
      let response: UpstreamResponse;
      try {
        response = await deps.fetch(target.url, { headers, body: payload, signal });
      } catch (err) {
        record(false);
        if (!failedBeforeSending(err)) {
          const tries = [...skipped, { name: upstream.name, reason: "connection lost after sending" }];
          throw new UpstreamOutcomeUnknown("upstream_error", `the model upstream failed after the request was sent; not retried, as it may have been processed (${tries.map(t => `${t.name}: ${t.reason}`).join("; ")})`, { cause: err });
        }
        lastWasRateLimit = false;
        skipped.push({ name: upstream.name, reason: "connection failed", detail: (err as Error).message });
        continue;
      }
      if (isFallbackStatus(response.status)) {
        record(false);
        lastWasRateLimit = response.status === 429;
        skipped.push({ name: upstream.name, reason: `status ${response.status}` });
        await response.dump();
        continue;
      }
      record(true);
      return { upstream, response, skipped, secrets: credentialValues(headers) };
    } finally {
      if (!recorded) deps.breakers.release(upstream.name);
    }
  }
  const why = skipped.map(s => `${s.name}: ${s.reason}`).join("; ");
  // the details go to the router's log (as the error's cause), never into the agent's answer
  const cause = new Error(`upstream attempts: ${skipped.map(s => `${s.name}: ${s.reason}${s.detail ? ` (${s.detail})` : ""}`).join("; ")}`);
  if (tried === 0 || lastWasRateLimit) {
    throw new RouterError("upstream_unavailable", `no model upstream available (${why})`, { retryAfterSeconds: lastWasRateLimit ? 1 : 5, cause });
  }
  throw new RouterError("upstream_error", `every model upstream failed (${why})`, { cause });
}
