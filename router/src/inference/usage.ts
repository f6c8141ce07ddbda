/**
 * Total tokens an upstream reports having used, from a response body or one stream event:
 * chat/embeddings `usage.total_tokens` (else prompt + completion), responses `usage.total_tokens`
 * (else input + output), also inside a `response.completed` event's `response`. Undefined when the
 * body reports no usage. Upstream-controlled input: only finite non-negative numbers count.
 */
export function reportedTotalTokens(body: unknown): number | undefined {
  if (!body || typeof body !== "object") return undefined;
  const b = body as { usage?: unknown; response?: unknown; type?: unknown };
  if (b.type === "response.completed" || b.type === "response.incomplete" || b.type === "response.failed") return reportedTotalTokens(b.response);
  const u = b.usage;
  if (!u || typeof u !== "object") return undefined;
  const n = (v: unknown) => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : undefined);
  const usage = u as Record<string, unknown>;
  const total = n(usage.total_tokens);
  if (total !== undefined) return total;
  const parts = [n(usage.prompt_tokens) ?? n(usage.input_tokens), n(usage.completion_tokens) ?? n(usage.output_tokens)];
  if (parts.every(p => p === undefined)) return undefined;
  return (parts[0] ?? 0) + (parts[1] ?? 0);
}

/** Whether a chat stream event is the usage-only chunk that `include_usage` adds (empty choices, usage set). */
export function isUsageOnlyChunk(body: unknown): boolean {
  if (!body || typeof body !== "object") return false;
  const b = body as { choices?: unknown; usage?: unknown; prompt_filter_results?: unknown };
  return Array.isArray(b.choices) && b.choices.length === 0 && !!b.usage && b.prompt_filter_results === undefined;
}
