/**
 * Typed router errors (STYLE §4): handlers and checks throw these; only `openai-error.ts` turns them
 * into an HTTP status and the OpenAI `{"error":{message,type,code}}` body (DESIGN §6).
 */

/** Closed set of router error codes; each is the `error.code` an agent sees. DESIGN §6. */
export type RouterErrorCode =
  | "policy_violation" // request violates the InferencePolicy (model or action not allowed)
  | "policy_denied" // PolicyEngine (toolpolicy.yaml) denied the action
  | "token_budget_exceeded" // the sandbox's hourly/daily/monthly budget cannot cover the reservation
  | "budget_exceeded" // the tenant's budget cannot cover the reservation
  | "per_request_tokens_exceeded" // prompt estimate + max tokens above tokenBudget.perRequestTokens
  | "rate_limited" // global or per-agent token bucket empty (carries retryAfterSeconds)
  | "content_policy_violation" // upstream filter results above the contentSafety floor
  | "invalid_request" // 400: malformed JSON or a field of the wrong shape
  | "request_too_large" // 413
  | "unsupported_media_type" // 415
  | "not_found" // 404: unknown route
  | "upstream_error" // 502: every upstream candidate failed
  | "upstream_unavailable" // 503: no upstream can be tried (circuit open, no credential, not ready)
  | "unauthorized" // 401: ops endpoint without the right bearer token
  | "internal_error"; // 500: a bug; message is generic

/** An error a check throws to refuse a request; `message` is shown to the agent, so never put a secret in it. */
export class RouterError extends Error {
  override readonly name = "RouterError";
  constructor(
    readonly code: RouterErrorCode,
    message: string,
    /** `configured`: the refusal is what the configuration says to do (logged once when loaded, not per request). */
    readonly details: { retryAfterSeconds?: number; param?: string; cause?: unknown; configured?: boolean } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
  }
}
