import { eventData, SseSplitter } from "./sse";
import { isUsageOnlyChunk, reportedTotalTokens } from "./usage";

describe("SseSplitter", () => {
  it("splits events across arbitrary chunk boundaries, including multi-byte characters and CRLF", () => {
    const text = 'data: {"a":"é"}\n\ndata: {"b":1}\r\n\r\ndata: [DONE]\n\n';
    const bytes = Buffer.from(text);
    const s = new SseSplitter();
    const events: string[] = [];
    for (let i = 0; i < bytes.length; i += 3) events.push(...s.push(bytes.subarray(i, i + 3)));
    expect(events.map(eventData)).toEqual([{ a: "é" }, { b: 1 }, "[DONE]"]);
    expect(events.join("")).toBe(text);
    expect(s.flush()).toBe("");
  });

  it("keeps an unterminated tail for flush", () => {
    const s = new SseSplitter();
    expect(s.push(Buffer.from("data: {}\n\ndata: x"))).toHaveLength(1);
    expect(s.flush()).toBe("data: x");
  });
});

describe("reportedTotalTokens", () => {
  it.each<[string, unknown, number | undefined]>([
    ["chat total", { usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } }, 7],
    ["chat parts without total", { usage: { prompt_tokens: 3, completion_tokens: 4 } }, 7],
    ["responses completed event", { type: "response.completed", response: { usage: { input_tokens: 5, output_tokens: 6, total_tokens: 11 } } }, 11],
    ["no usage", { choices: [] }, undefined],
    ["null usage (stream chunk before the end)", { usage: null }, undefined],
    ["negative numbers are ignored", { usage: { total_tokens: -5, prompt_tokens: 2 } }, 2],
  ])("%s", (_t, body, n) => {
    expect(reportedTotalTokens(body)).toBe(n);
  });

  it("recognises the include_usage chunk but not Azure's prompt-filter chunk", () => {
    expect(isUsageOnlyChunk({ choices: [], usage: { total_tokens: 1 } })).toBe(true);
    expect(isUsageOnlyChunk({ choices: [], prompt_filter_results: [], usage: null })).toBe(false);
  });
});
