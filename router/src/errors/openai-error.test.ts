import { toErrorReply } from "./openai-error";
import { RouterError, type RouterErrorCode } from "./router-error";

describe("toErrorReply", () => {
  it.each<[RouterErrorCode, number, string]>([
    ["policy_violation", 403, "permission_error"],
    ["policy_denied", 403, "permission_error"],
    ["token_budget_exceeded", 429, "insufficient_quota"],
    ["budget_exceeded", 429, "insufficient_quota"],
    ["per_request_tokens_exceeded", 429, "insufficient_quota"],
    ["rate_limited", 429, "rate_limit_error"],
    ["content_policy_violation", 403, "invalid_request_error"],
    ["invalid_request", 400, "invalid_request_error"],
    ["request_too_large", 413, "invalid_request_error"],
    ["unsupported_media_type", 415, "invalid_request_error"],
    ["upstream_error", 502, "api_error"],
    ["upstream_unavailable", 503, "api_error"],
  ])("%s is HTTP %i of type %s", (code, status, type) => {
    const r = toErrorReply(new RouterError(code, "m"));
    expect([r.status, r.body]).toEqual([status, { error: { message: "m", type, code, param: null } }]);
  });

  it.each<[unknown, number, string]>([
    [Object.assign(new Error("Body is too large"), { code: "FST_ERR_CTP_BODY_TOO_LARGE", statusCode: 413 }), 413, "request_too_large"],
    [Object.assign(new Error("Unsupported Media Type"), { code: "FST_ERR_CTP_INVALID_MEDIA_TYPE", statusCode: 415 }), 415, "unsupported_media_type"],
    [new SyntaxError("Unexpected token"), 400, "invalid_request"],
    [new Error("boom with sk-secret"), 500, "internal_error"],
  ])("maps %p to %i %s without leaking its message", (err, status, code) => {
    const r = toErrorReply(err);
    expect([r.status, r.body.error.code]).toEqual([status, code]);
    expect(r.body.error.message).not.toContain("sk-secret");
  });

  it("tells SDKs not to retry budget refusals, and when to retry rate limits", () => {
    expect(toErrorReply(new RouterError("token_budget_exceeded", "m", { retryAfterSeconds: 3600 })).headers).toEqual({ "x-should-retry": "false", "retry-after": "3600" });
    expect(toErrorReply(new RouterError("rate_limited", "m", { retryAfterSeconds: 0.2 })).headers).toEqual({ "retry-after": "1" });
  });
});
