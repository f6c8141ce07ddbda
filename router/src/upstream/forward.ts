import { RouterError } from "../errors/router-error";
import type { UpstreamSpec } from "../config/profile";
import type { InferenceApi } from "../policy/model-selection";
import type { CircuitBreakers } from "./circuit-breaker";
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
}

/** Whether an upstream status means "try the next preference" (issue 3: fallback on 429/5xx). */
export function isFallbackStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

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
 * Sends the request to the first candidate whose circuit is closed (or half-open), falling back to the
 * next on 429, 5xx or a connection error. A request is never repeated to the same upstream: the next
 * attempt goes to a different deployment, which is safe because the failed one produced no answer.
 * Throws RouterError `upstream_unavailable` (503) when no candidate could be tried or the last said 429,
 * `upstream_error` (502) otherwise; their message names each upstream with a coarse reason, and the
 * underlying errors travel as the `cause` (logged, never answered). Upstream error bodies are dumped,
 * never shown (they may echo headers).
 */
export async function forwardWithFallback(
  candidates: readonly UpstreamSpec[],
  api: InferenceApi,
  body: Record<string, unknown>,
  completionLimit: number | undefined,
  deps: ForwardDeps,
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
    let headers: Record<string, string>;
    try {
      headers = await deps.auth(upstream);
    } catch (err) {
      deps.breakers.failure(upstream.name, deps.now());
      skipped.push({ name: upstream.name, reason: "no credential", detail: (err as Error).message });
      continue;
    }
    const target = upstreamTarget(upstream, api, body, completionLimit);
    tried++;
    let response: UpstreamResponse;
    try {
      response = await deps.fetch(target.url, { headers, body: JSON.stringify(target.body), signal });
    } catch (err) {
      deps.breakers.failure(upstream.name, deps.now());
      lastWasRateLimit = false;
      skipped.push({ name: upstream.name, reason: "connection failed", detail: (err as Error).message });
      continue;
    }
    if (isFallbackStatus(response.status)) {
      deps.breakers.failure(upstream.name, deps.now());
      lastWasRateLimit = response.status === 429;
      skipped.push({ name: upstream.name, reason: `status ${response.status}` });
      await response.dump();
      continue;
    }
    deps.breakers.success(upstream.name);
    return { upstream, response, skipped };
  }
  const why = skipped.map(s => `${s.name}: ${s.reason}`).join("; ");
  // the details go to the router's log (as the error's cause), never into the agent's answer
  const cause = new Error(`upstream attempts: ${skipped.map(s => `${s.name}: ${s.reason}${s.detail ? ` (${s.detail})` : ""}`).join("; ")}`);
  if (tried === 0 || lastWasRateLimit) {
    throw new RouterError("upstream_unavailable", `no model upstream available (${why})`, { retryAfterSeconds: lastWasRateLimit ? 1 : 5, cause });
  }
  throw new RouterError("upstream_error", `every model upstream failed (${why})`, { cause });
}
