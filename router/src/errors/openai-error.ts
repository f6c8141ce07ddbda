import { RouterError, type RouterErrorCode } from "./router-error";

/** OpenAI error body, as the `openai` SDK parses it. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; code: string; param: string | null };
}

/** An HTTP reply for an error: status, extra headers, body. */
export interface ErrorReply {
  status: number;
  headers: Record<string, string>;
  body: OpenAIErrorBody;
}

const statusAndType: Record<RouterErrorCode, [number, string]> = {
  policy_violation: [403, "permission_error"],
  policy_denied: [403, "permission_error"],
  token_budget_exceeded: [429, "insufficient_quota"],
  budget_exceeded: [429, "insufficient_quota"],
  per_request_tokens_exceeded: [429, "insufficient_quota"],
  rate_limited: [429, "rate_limit_error"],
  content_policy_violation: [403, "invalid_request_error"],
  invalid_request: [400, "invalid_request_error"],
  request_too_large: [413, "invalid_request_error"],
  unsupported_media_type: [415, "invalid_request_error"],
  not_found: [404, "invalid_request_error"],
  upstream_error: [502, "api_error"],
  upstream_unavailable: [503, "api_error"],
  unauthorized: [401, "authentication_error"],
  internal_error: [500, "api_error"],
};

/**
 * Refusals that a retry cannot fix before the budget window ends: the OpenAI SDKs honour
 * `x-should-retry: false` and skip their automatic 429 retries.
 */
const NOT_RETRYABLE: ReadonlySet<RouterErrorCode> = new Set(["token_budget_exceeded", "budget_exceeded", "per_request_tokens_exceeded"]);

/** fastify's own error codes (body parsing, limits) mapped onto ours. */
const fastifyCodes: Record<string, RouterErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: "request_too_large",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "unsupported_media_type",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "invalid_request",
  FST_ERR_CTP_EMPTY_JSON_BODY: "invalid_request",
  FST_ERR_CTP_INVALID_JSON_BODY: "invalid_request",
  FST_ERR_CTP_INSTANCE_ALREADY_STARTED: "internal_error",
  FST_ERR_VALIDATION: "invalid_request",
};

/**
 * The one mapping from anything thrown in a request to the HTTP reply (DESIGN §6 statuses and codes).
 * RouterError → its code; fastify body-parser errors → 400/413/415; a JSON SyntaxError → 400;
 * anything else → 500 with a generic message (the original error is logged by the caller, not sent).
 */
export function toErrorReply(err: unknown): ErrorReply {
  const routerError = asRouterError(err);
  const [status, type] = statusAndType[routerError.code];
  const headers: Record<string, string> = {};
  if (NOT_RETRYABLE.has(routerError.code)) headers["x-should-retry"] = "false";
  if (routerError.details.retryAfterSeconds !== undefined) {
    headers["retry-after"] = String(Math.max(1, Math.ceil(routerError.details.retryAfterSeconds)));
  }
  return {
    status,
    headers,
    body: {
      error: { message: routerError.message, type, code: routerError.code, param: routerError.details.param ?? null },
    },
  };
}

/** Normalises a thrown value into a RouterError (see toErrorReply). */
export function asRouterError(err: unknown): RouterError {
  if (err instanceof RouterError) return err;
  const fastifyCode = (err as { code?: unknown } | null)?.code;
  if (typeof fastifyCode === "string" && fastifyCode in fastifyCodes) {
    const code = fastifyCodes[fastifyCode];
    return new RouterError(code, messageFor(code, err), { cause: err });
  }
  if (err instanceof SyntaxError) return new RouterError("invalid_request", "request body is not valid JSON", { cause: err });
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  if (status === 400) return new RouterError("invalid_request", messageFor("invalid_request", err), { cause: err });
  if (status === 413) return new RouterError("request_too_large", messageFor("request_too_large", err), { cause: err });
  if (status === 415) return new RouterError("unsupported_media_type", messageFor("unsupported_media_type", err), { cause: err });
  return new RouterError("internal_error", "internal error in the kars router", { cause: err });
}

function messageFor(code: RouterErrorCode, err: unknown): string {
  switch (code) {
    case "request_too_large":
      return "request body is larger than the router accepts";
    case "unsupported_media_type":
      return "content-type must be application/json";
    case "invalid_request":
      return err instanceof Error && /JSON/i.test(err.message) ? "request body is not valid JSON" : "invalid request";
    default:
      return "internal error in the kars router";
  }
}
