import { eventData, eventHasData, isEventStreamType, isPlainSseEvent, MAX_EVENT_CHARS, plainEvent, SseSplitter, withData } from "./sse";
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

  it.each<[string, string]>([
    ["LF", 'data: {"a":1}\n\ndata: {"b":2}\n\n'],
    ["CRLF", 'data: {"a":1}\r\n\r\ndata: {"b":2}\r\n\r\n'],
    ["bare CR (valid SSE: a server using it must not slip events past the router unread)", 'data: {"a":1}\r\rdata: {"b":2}\r\r'],
    ["mixed, with event: and comment lines", 'event: x\r: c\ndata: {"a":1}\r\n\ndata: {"b":2}\n\r'],
  ])("splits %s framing, byte by byte too", (_t, text) => {
    for (const step of [text.length, 1]) {
      const s = new SseSplitter();
      const events: string[] = [];
      const bytes = Buffer.from(text);
      for (let i = 0; i < bytes.length; i += step) events.push(...s.push(bytes.subarray(i, i + step)));
      events.push(s.flush());
      expect(events.filter(e => e !== "").map(eventData)).toEqual([{ a: 1 }, { b: 2 }]);
      expect(events.join("")).toBe(text);
    }
  });

  it("refuses an event longer than MAX_EVENT_CHARS rather than buffering it", () => {
    const s = new SseSplitter();
    const piece = Buffer.from("x".repeat(16 * 1024));
    s.push(Buffer.from("data: "));
    let thrown: unknown;
    try {
      for (let i = 0; i <= MAX_EVENT_CHARS / piece.length; i++) s.push(piece);
    } catch (err) {
      thrown = err;
    }
    expect((thrown as Error).message).toBe(`upstream stream event longer than ${MAX_EVENT_CHARS} characters`);
  });

  it("tells an event without data from one whose data is not JSON", () => {
    expect([eventData(": comment\n\n"), eventHasData(": comment\n\n")]).toEqual([undefined, false]);
    expect([eventData("data: {NaN}\n\n"), eventHasData("data: {NaN}\n\n")]).toEqual([undefined, true]);
    expect([eventData("data:[DONE]\n\n"), eventHasData("data:[DONE]\n\n")]).toEqual(["[DONE]", true]);
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

describe("isPlainSseEvent", () => {
  it.each<[string, string, boolean]>([
    ["data lines", "data: {}\n\n", true],
    ["every field of the format, CRLF line ends", "event: x\r\nid: 1\r\nretry: 10\r\ndata: a\r\n\r\n", true],
    ["a comment", ": keep-alive\n\n", true],
    ["a field without a value", "data\n\n", true],
    ["a JSON body sent where a stream was asked for", '{"choices":[]}\n\n', false],
    ["a field the format does not know", "data: {}\nx-content: hi\n\n", false],
    ["a field name with a space", "data : {}\n\n", false],
  ])("%s", (_t, event, expected) => {
    expect(isPlainSseEvent(event)).toBe(expected);
  });
});

describe("isEventStreamType", () => {
  it.each<[string | undefined, boolean]>([
    ["text/event-stream", true],
    ["text/event-stream; charset=utf-8", true],
    ["Text/Event-Stream", true],
    ["application/json", false],
    ["text/event-streaming", false],
    [undefined, false],
  ])("%s", (type, expected) => {
    expect(isEventStreamType(type)).toBe(expected);
  });
});

describe("withData and plainEvent (what the router passes on)", () => {
  it.each<[string, string, string]>([
    ["a plain data event", "data: {}\n\n", 'data: {"a":1}\n\n'],
    ["an OpenAI event type is kept", "event: response.output_text.delta\ndata: {}\n\n", 'event: response.output_text.delta\ndata: {"a":1}\n\n'],
    ["bare CR line ends: the original data line does not survive", 'event: x\rdata: {"content":"secret"}\r\r', 'event: x\ndata: {"a":1}\n\n'],
    ["comments, id and retry lines are dropped", ": sk-part\nid: sk-part\nretry: 10\ndata: {}\n\n", 'data: {"a":1}\n\n'],
    ["an event value that is no event type is dropped", "event: sk-Q7vX2mR9\ndata: {}\n\n", 'data: {"a":1}\n\n'],
  ])("withData: %s", (_t, event, expected) => {
    expect(withData(event, { a: 1 })).toBe(expected);
  });

  it.each<[string, string, string]>([
    ["[DONE]", "data: [DONE]\n\n", "data: [DONE]\n\n"],
    ["data that is not JSON keeps its lines, LF-ended", "event: error\r\ndata: oops\r\ndata: more\r\n\r\n", "event: error\ndata: oops\ndata: more\n\n"],
    ["a comment alone is nothing", ": keep-alive\n\n", ""],
  ])("plainEvent: %s", (_t, event, expected) => {
    expect(plainEvent(event)).toBe(expected);
  });
});
