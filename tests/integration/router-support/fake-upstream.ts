/**
 * A local OpenAI-compatible upstream on 127.0.0.1 that answers like Azure OpenAI (usage, prompt and
 * completion filter results, SSE streams with `include_usage`) and records every request it received.
 * Behaviour is steered by markers in the last user message:
 *   `[[hate]]`      → completion filter results: hate severity "high" (chat `content_filter_results`,
 *                     Responses `content_filters[source_type completion]`)
 *   `[[hate-low]]`  → the same with severity "low"
 *   `[[jailbreak]]` → Responses only: Azure's prompt block, 400 `content_filter` whose error carries
 *                     `content_filters[]` with a detected, filtered jailbreak (stream or not)
 *   `[[slow N]]`    → answer after N ms (streams: one chunk every N/5 ms)
 * Usage: prompt_tokens = 10, completion_tokens = min(3, max_completion_tokens).
 * Responses (`/responses`, Azure's v1 shape): a whole `response` object with Azure's top-level
 * `content_filters` (prompt, then completion), or with `stream: true` the Responses SSE events
 * (`event: <type>` + `data: {type, sequence_number, …}`): response.created, response.in_progress,
 * output_item/content_part added, three response.output_text.delta ("Hel", "lo", "!"), the matching
 * done events, and response.completed whose `response.usage` is {input_tokens, output_tokens,
 * total_tokens} and whose `response.content_filters` holds the annotations (the earlier lifecycle
 * events have `content_filters: null`, as Azure streams them); no `[DONE]` (the Responses API sends none).
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

export interface FakeUpstream {
  url: string;
  received: ReceivedRequest[];
  /** Usage totals the upstream reported, summed (what the router should have charged). */
  reportedTokens(): number;
  /** Streams that ran to the end (usage chunk sent). */
  completedStreams(): number;
  close(): Promise<void>;
}

export const PROMPT_TOKENS = 10;
export const COMPLETION_TOKENS = 3;

const filterOk = { hate: { filtered: false, severity: "safe" }, self_harm: { filtered: false, severity: "safe" }, sexual: { filtered: false, severity: "safe" }, violence: { filtered: false, severity: "safe" } };

export async function startFakeUpstream(): Promise<FakeUpstream> {
  const received: ReceivedRequest[] = [];
  let reported = 0;
  let completed = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", c => chunks.push(c));
    req.on("end", () => {
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
      } catch {
        res.writeHead(400).end();
        return;
      }
      received.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      const text = JSON.stringify(body.messages ?? body.input ?? "");
      const slow = /\[\[slow (\d+)\]\]/.exec(text);
      const delay = slow ? Number(slow[1]) : 0;
      const maxOut = Number(body.max_completion_tokens ?? body.max_tokens ?? body.max_output_tokens ?? COMPLETION_TOKENS);
      const completion = Math.min(COMPLETION_TOKENS, maxOut);
      const usage = { prompt_tokens: PROMPT_TOKENS, completion_tokens: completion, total_tokens: PROMPT_TOKENS + completion };
      const hate = text.includes("[[hate]]") ? "high" : text.includes("[[hate-low]]") ? "low" : undefined;
      const cfr = hate ? { ...filterOk, hate: { filtered: false, severity: hate } } : filterOk;
      const url = req.url ?? "";
      if (url.includes("/embeddings")) {
        reported += PROMPT_TOKENS;
        const vector = [0.1, 0.2, 0.3];
        const embedding = body.encoding_format === "base64" ? Buffer.from(new Float32Array(vector).buffer).toString("base64") : vector;
        return json(res, 200, { object: "list", data: [{ object: "embedding", index: 0, embedding }], model: "emb", usage: { prompt_tokens: PROMPT_TOKENS, total_tokens: PROMPT_TOKENS } });
      }
      if (url.includes("/responses") && text.includes("[[jailbreak]]")) {
        const promptBlock = { blocked: true, source_type: "prompt", content_filter_results: { ...filterOk, jailbreak: { detected: true, filtered: true } } };
        return json(res, 400, { error: { message: "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.", type: "invalid_request_error", param: "prompt", code: "content_filter", content_filters: [promptBlock] } });
      }
      const contentFilters = [
        { blocked: false, source_type: "prompt", content_filter_raw: [], content_filter_results: { ...filterOk, jailbreak: { detected: false, filtered: false } }, content_filter_offsets: { start_offset: 0, end_offset: text.length, check_offset: 0 } },
        { blocked: false, source_type: "completion", content_filter_raw: [], content_filter_results: cfr, content_filter_offsets: { start_offset: 0, end_offset: 6, check_offset: 0 } },
      ];
      if (url.includes("/responses") && body.stream === true) {
        res.writeHead(200, { "content-type": "text/event-stream" });
        const events = responseStreamEvents(String(body.model), { input_tokens: PROMPT_TOKENS, output_tokens: completion, total_tokens: usage.total_tokens }, contentFilters);
        let i = 0;
        const next = () => {
          if (res.destroyed) return;
          if (i < events.length) {
            const e = events[i++];
            res.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
            setTimeout(next, delay / 5);
          } else {
            res.end();
            reported += usage.total_tokens;
            completed++;
          }
        };
        next();
        return;
      }
      if (url.includes("/responses")) {
        reported += usage.total_tokens;
        return json(res, 200, {
          id: "resp_1", object: "response", status: "completed", model: String(body.model), error: null, incomplete_details: null,
          content_filters: contentFilters,
          output: [{ type: "message", id: "msg_1", role: "assistant", status: "completed", content: [{ type: "output_text", text: "hello from responses", annotations: [] }] }],
          usage: { input_tokens: PROMPT_TOKENS, output_tokens: completion, total_tokens: usage.total_tokens },
        });
      }
      if (!url.includes("/chat/completions")) return json(res, 404, { error: { message: "no such route", code: "404" } });
      const promptFilter = [{ prompt_index: 0, content_filter_results: filterOk }];
      if (body.stream === true) {
        res.writeHead(200, { "content-type": "text/event-stream" });
        const events: unknown[] = [
          { id: "c", object: "chat.completion.chunk", choices: [], prompt_filter_results: promptFilter },
          ...["Hel", "lo", "!"].map((t, i) => ({ id: "c", object: "chat.completion.chunk", model: body.model, choices: [{ index: 0, delta: i === 0 ? { role: "assistant", content: t } : { content: t }, finish_reason: null, content_filter_results: cfr }] })),
          { id: "c", object: "chat.completion.chunk", model: body.model, choices: [{ index: 0, delta: {}, finish_reason: "stop" }] },
        ];
        const wantsUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
        if (wantsUsage) events.push({ id: "c", object: "chat.completion.chunk", model: body.model, choices: [], usage });
        let i = 0;
        const next = () => {
          if (i < events.length) {
            res.write(`data: ${JSON.stringify(events[i++])}\n\n`);
            setTimeout(next, delay / 5);
          } else {
            res.end("data: [DONE]\n\n");
            if (wantsUsage) reported += usage.total_tokens;
            completed++;
          }
        };
        next();
        return;
      }
      setTimeout(() => {
        reported += usage.total_tokens;
        json(res, 200, {
          id: "chatcmpl-1", object: "chat.completion", created: 1, model: String(body.model),
          prompt_filter_results: promptFilter,
          choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: "Hello!" }, content_filter_results: cfr }],
          usage,
        });
      }, delay);
    });
  });
  await new Promise<void>(r => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    reportedTokens: () => reported,
    completedStreams: () => completed,
    close: () => new Promise(r => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** The Responses API stream of one assistant message "Hello!" (https://platform.openai.com/docs/api-reference/responses-streaming). */
function responseStreamEvents(model: string, usage: { input_tokens: number; output_tokens: number; total_tokens: number }, contentFilters: unknown[]): { type: string; [k: string]: unknown }[] {
  const base = { id: "resp_s1", object: "response", created_at: 1, model, content_filters: null, error: null, incomplete_details: null, instructions: null, max_output_tokens: null, parallel_tool_calls: true, tool_choice: "auto", tools: [], text: { format: { type: "text" } } };
  const ids = { item_id: "msg_s1", output_index: 0, content_index: 0 };
  const part = (text: string) => ({ type: "output_text", text, annotations: [] });
  const item = (status: string, content: unknown[]) => ({ id: "msg_s1", type: "message", status, role: "assistant", content });
  const deltas = ["Hel", "lo", "!"];
  const events: { type: string; [k: string]: unknown }[] = [
    { type: "response.created", response: { ...base, status: "in_progress", output: [], usage: null } },
    { type: "response.in_progress", response: { ...base, status: "in_progress", output: [], usage: null } },
    { type: "response.output_item.added", output_index: 0, item: item("in_progress", []) },
    { type: "response.content_part.added", ...ids, part: part("") },
    ...deltas.map(delta => ({ type: "response.output_text.delta", ...ids, delta, logprobs: [] })),
    { type: "response.output_text.done", ...ids, text: deltas.join(""), logprobs: [] },
    { type: "response.content_part.done", ...ids, part: part(deltas.join("")) },
    { type: "response.output_item.done", output_index: 0, item: item("completed", [part(deltas.join(""))]) },
    { type: "response.completed", response: { ...base, status: "completed", content_filters: contentFilters, output: [item("completed", [part(deltas.join(""))])], usage: { input_tokens: usage.input_tokens, input_tokens_details: { cached_tokens: 0 }, output_tokens: usage.output_tokens, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: usage.total_tokens } } },
  ];
  return events.map((e, sequence_number) => ({ ...e, sequence_number }));
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
}
