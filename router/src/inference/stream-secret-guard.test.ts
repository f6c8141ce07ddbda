import { eventData, withData } from "./sse";
import { RouterError } from "../errors/router-error";
import { HOLD_FROM_RUN, MAX_FIELD_PATHS, MAX_HELD_CHARS, MAX_HELD_EVENTS, MAX_PATH_DEPTH, MIN_REDACTED_RUN, StreamSecretGuard, redactMarked } from "./stream-secret-guard";
import { noMatch, SubstringMatcher } from "./substring-matcher";

const KEY = "sk-kars0123456789abcdefghijklmnopqrstuvwxyzABCD"; // an API key the router sent upstream
const TOKEN = `eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.${"eyJhdWQiOiJodHRwczovL2NvZ25pdGl2ZXNlcnZpY2VzLmF6dXJlLmNvbSJ9".repeat(8)}.c2lnbmF0dXJl`;

const chat = (content: string) => withData("", { id: "chatcmpl-1", object: "chat.completion.chunk", choices: [{ index: 0, delta: { content } }] });
const toolArgs = (args: string) => withData("", { id: "chatcmpl-1", choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: args } }] } }] });
const respDelta = (delta: string) => withData("", { type: "response.output_text.delta", item_id: "msg_1", output_index: 0, content_index: 0, delta });

/** Runs events through a guard; returns each push's output count and every event passed on, in order. */
function run(secrets: string[], events: string[], api: "chat" | "responses" | "other" = "chat"): { out: string[]; passedPerPush: number[] } {
  const guard = new StreamSecretGuard(secrets, withData, e => e, api);
  const out: string[] = [];
  const passedPerPush: number[] = [];
  for (const e of events) {
    const passed = guard.push(e, eventData(e));
    passedPerPush.push(passed.length);
    out.push(...passed.map(g => g.event));
  }
  out.push(...guard.flush().map(g => g.event));
  return { out, passedPerPush };
}

/** The text an agent reassembles: every string value of every event, field by field in order. */
/** Parsed event data, read loosely (the tests pick the fields they know are there). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test data of known shape
type Loose = any;

function fieldText(events: string[], pick: (data: Loose) => string | undefined): string {
  return events.map(e => pick(eventData(e)) ?? "").join("");
}
const content = (d: Loose) => d?.choices?.[0]?.delta?.content;
/** Adjacent markers (one per event a run spans) read as one. */
const collapse = (text: string) => text.replace(/(\[redacted\])+/g, "[redacted]");

/** The longest run of characters of one of `secrets` in `text`. */
function longestRun(secrets: string[], text: string): number {
  const m = new SubstringMatcher(secrets);
  const at = noMatch();
  let best = 0;
  for (let i = 0; i < text.length; i++) best = Math.max(best, m.advance(at, text.charCodeAt(i)));
  return best;
}

/** Cuts `text` into pieces of the given sizes (the last piece takes the rest). */
function cut(text: string, sizes: number[]): string[] {
  const out: string[] = [];
  let i = 0;
  for (const n of sizes) {
    if (i >= text.length) break;
    out.push(text.slice(i, i + n));
    i += n;
  }
  if (i < text.length) out.push(text.slice(i));
  return out;
}

describe("StreamSecretGuard", () => {
  it.each<[string, string[], string]>([
    ["a key cut in two chat deltas", cut(`Your key is ${KEY}, keep it safe.`, [20, 100]), "Your key is [redacted], keep it safe."],
    ["a key cut in three, the middle piece shorter than the redaction length", cut(`>${KEY}<`, [12, 7, 100]), ">[redacted]<"],
    // the first HOLD_FROM_RUN - 1 characters of a run go out before the run can be told from chance
    ["a key one character per event", cut(`x${KEY}y`, Array(60).fill(1)), `x${KEY.slice(0, HOLD_FROM_RUN - 1)}[redacted]y`],
    ["a key in pieces of five", cut(`..${KEY}..`, Array(20).fill(5)), "..sk-[redacted].."],
    ["an Entra token cut every 100 characters", cut(`Bearer ${TOKEN}`, Array(40).fill(100)), "Bearer [redacted]"],
    ["an Entra token cut every 7 characters", cut(`Bearer ${TOKEN}`, Array(400).fill(7)), "Bearer [redacted]"],
    ["a key split between two 100 KiB deltas", cut(`${"x".repeat(100_000)}${KEY}${"y".repeat(100_000)}`, [100_010]), `${"x".repeat(100_000)}[redacted]${"y".repeat(100_000)}`],
    ["an Entra token split over deltas of 100 KiB, 100 characters and 100 KiB", cut(`${"x".repeat(100_000)}${TOKEN}${"y".repeat(100_000)}`, [100_010, 100]), `${"x".repeat(100_000)}[redacted]${"y".repeat(100_000)}`],
    ["the text around a credential stays as it was", cut(`before ${KEY} after`, [10, 10, 10, 100]), "before sk-[redacted] after"],
  ])("%s", (_t, pieces, expected) => {
    const { out } = run([KEY, TOKEN], pieces.map(chat));
    expect(collapse(fieldText(out, content))).toBe(expected);
    expect(out).toHaveLength(pieces.length); // nothing lost, nothing added
  });

  it.each<[string, (s: string) => string, (d: Loose) => string | undefined]>([
    ["tool call arguments", toolArgs, d => d?.choices?.[0]?.delta?.tool_calls?.[0]?.function?.arguments],
    ["Responses output_text deltas", respDelta, d => d?.delta],
  ])("follows %s across events", (_t, make, pick) => {
    const { out } = run([KEY], cut(`{"k":"${KEY}"}`, [9, 9, 9, 9, 100]).map(make));
    const text = fieldText(out, pick);
    expect(longestRun([KEY], text)).toBeLessThan(HOLD_FROM_RUN);
    expect(text).toContain("[redacted]");
  });

  it("reads a field across events whatever other fields come between (ids, roles, usage)", () => {
    const events = [chat(KEY.slice(0, 20)), withData("", { id: "chatcmpl-1", choices: [], usage: { total_tokens: 3 } }), "data: [DONE-ish, not JSON]\n\n", chat(KEY.slice(20))];
    const { out } = run([KEY], events);
    expect(longestRun([KEY], fieldText(out, content))).toBeLessThan(MIN_REDACTED_RUN);
    expect(out[2]).toBe(events[2]); // an event that is not JSON passes in its place
  });

  it("passes ordinary streams on at once, unchanged", () => {
    const events = ["Hello", ", how", " can I", " help? sk-", "proj is a prefix, eyJ0 too"].map(chat);
    const { out, passedPerPush } = run([KEY, TOKEN], events);
    expect(out).toEqual(events);
    expect(passedPerPush).toEqual([1, 1, 1, 1, 1]);
  });

  it("holds an event whose field ends in part of a credential until the run ends", () => {
    const events = [chat("see "), chat(KEY.slice(0, HOLD_FROM_RUN + 2)), chat(" — no, that was all")];
    const { out, passedPerPush } = run([KEY], events);
    expect(passedPerPush).toEqual([1, 0, 2]);
    expect(out).toEqual(events); // a short run is not a credential: released unchanged
  });

  it("cuts whole credentials inside one event, in keys and behind escapes too", () => {
    const escaped = `data: {"choices":[{"delta":{"content":"${KEY.replace("k", "\\u006b")}"}}],"${KEY}":1}\n\n`;
    const { out } = run([KEY], [escaped]);
    expect(out[0]).not.toContain(KEY);
    expect(longestRun([KEY], JSON.stringify(eventData(out[0])))).toBeLessThan(MIN_REDACTED_RUN);
  });

  it("redacts secrets shorter than the run length by value only", () => {
    const short = "pw-12345678"; // 11 characters
    const { out } = run([short], [chat(`a ${short} b`), chat(short.slice(0, 5)), chat(short.slice(5))]);
    expect(fieldText(out, content)).toBe(`a [redacted] b${short}`);
  });

  it("follows a field under a key of 1 MiB (paths are bounded) and still joins a credential split there", () => {
    const long = "k".repeat(1024 * 1024);
    const ev = (text: string) => withData("", { [long]: Array.from({ length: 200 }, () => "filler"), c: { [long]: text } });
    const { out } = run([KEY], [ev(`x ${KEY.slice(0, 20)}`), ev(`${KEY.slice(20)} y`)]);
    const text = out.map(e => (eventData(e) as Record<string, Record<string, string>>).c[long]).join("");
    expect(collapse(text)).toBe("x [redacted] y");
  });

  it("follows each choice by its index, however choices are interleaved at the same array position", () => {
    const pieces = cut(KEY, Array(20).fill(5));
    const events = pieces.flatMap(p => [withData("", { choices: [{ index: 0, delta: { content: p } }] }), withData("", { choices: [{ index: 1, delta: { content: "other " } }] })]);
    const { out } = run([KEY], events);
    const choice0 = out.map(e => (eventData(e) as Loose).choices[0]).filter((c: Loose) => c.index === 0).map((c: Loose) => c.delta.content).join("");
    expect(longestRun([KEY], choice0)).toBeLessThan(HOLD_FROM_RUN);
  });

  it("follows each Responses item by its output_index and content_index, however items are interleaved", () => {
    const pieces = cut(KEY, Array(20).fill(5));
    const ev = (o: number, delta: string) => withData("", { type: "response.output_text.delta", item_id: `msg_${o}`, output_index: o, content_index: 0, delta });
    const { out } = run([KEY], pieces.flatMap(p => [ev(0, p), ev(1, "other ")]), "responses");
    const item0 = out.map(e => eventData(e) as Loose).filter(d => d.output_index === 0).map(d => d.delta).join("");
    expect(longestRun([KEY], item0)).toBeLessThan(HOLD_FROM_RUN);
  });

  // helper-26's round: fields as the OpenAI SDK merges them, not as the guard would like them
  it.each<[string, "chat" | "responses", (piece: string, i: number) => unknown[], (events: Loose[]) => string]>([
    ["a chat index sent as a string or a number", "chat", (p, i) => [{ choices: [{ index: i % 2 === 0 ? 0 : "0", delta: { content: p } }] }], evs => evs.map(d => d.choices?.[0]?.delta?.content ?? "").join("")],
    ["a chat chunk with an output_index of its own", "chat", (p, i) => [{ ...(i % 2 === 0 ? { output_index: 0 } : {}), choices: [{ index: 0, delta: { content: p } }] }], evs => evs.map(d => d.choices?.[0]?.delta?.content ?? "").join("")],
    ["a Responses output_index as a string or a number", "responses", (p, i) => [{ type: "response.output_text.delta", output_index: i % 2 === 0 ? 0 : "0", content_index: 0, delta: p }], evs => evs.map(d => d.delta ?? "").join("")],
    ["junk delta events of another type between the real ones", "responses", p => [{ type: "response.output_text.delta", output_index: 0, content_index: 0, delta: p }, { type: "response.x", output_index: 0, content_index: 0, delta: "." }], evs => evs.filter(d => d.type === "response.output_text.delta").map(d => d.delta).join("")],
    ["function arguments whose content_index varies (the SDK joins them by output_index)", "responses", (p, i) => [{ type: "response.function_call_arguments.delta", output_index: 0, content_index: i, delta: p }], evs => evs.map(d => d.delta).join("")],
    ["output_text deltas of two items (the SDK's output_text joins them all)", "responses", (p, i) => [{ type: "response.output_text.delta", output_index: i % 2, content_index: 0, delta: p }], evs => evs.map(d => d.delta).join("")],
  ])("follows %s", (_t, api, make, join) => {
    const events = cut(KEY, Array(20).fill(5)).flatMap((p, i) => make(p, i).map(d => withData("", d)));
    const { out } = run([KEY], events, api);
    expect(longestRun([KEY], join(out.map(e => eventData(e) as Loose)))).toBeLessThan(HOLD_FROM_RUN);
  });

  it.each<[string, "chat" | "responses", unknown]>([
    ["chat content given as an array", "chat", { choices: [{ index: 0, delta: { content: ["abcde"] } }] }],
    ["chat content given as a number", "chat", { choices: [{ index: 0, delta: { content: 12345 } }] }],
    ["tool call arguments given as an object", "chat", { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: { a: 1 } } }] } }] }],
    ["a Responses delta given as an array", "responses", { type: "response.output_text.delta", output_index: 0, delta: ["x"] }],
  ])("refuses %s (a client makes text of it its own way)", (_t, api, data) => {
    const guard = new StreamSecretGuard([KEY], withData, e => e, api);
    expect(() => guard.push(withData("", data), data)).toThrow(RouterError);
  });

  it("keeps data that is not JSON apart from JSON string data (each is a field of its own)", () => {
    const events = cut(KEY, Array(20).fill(5)).flatMap(p => [`data: ${p}\n\n`, 'data: "."\n\n']);
    const { out } = run([KEY], events);
    const raw = out.filter(e => typeof eventData(e) !== "string").map(e => e.replace(/^data: /, "").trimEnd()).join("");
    expect(longestRun([KEY], raw)).toBeLessThan(HOLD_FROM_RUN);
  });

  it("keeps data that is not JSON apart from any JSON key named like its box", () => {
    const events = cut(KEY, Array(20).fill(5)).flatMap(p => [`data: ${p}\n\n`, withData("", { value: "." })]);
    const { out } = run([KEY], events);
    const raw = out.filter(e => eventData(e) === undefined).map(e => e.replace(/^data: /, "").trimEnd()).join("");
    expect(longestRun([KEY], raw)).toBeLessThan(HOLD_FROM_RUN);
  });

  it("reads every character of a long value: a credential run in the middle of a 100 KiB delta is cut", () => {
    const { out } = run([KEY], [chat(`${"x".repeat(50_000)}${KEY.slice(0, -1)}${"y".repeat(50_000)}`)]);
    expect(collapse(fieldText(out, content))).toBe(`${"x".repeat(50_000)}[redacted]${"y".repeat(50_000)}`);
  });

  it("writes parsed data anew: a duplicate key's first value, which the parse dropped, does not go out", () => {
    const raw = `data: {"choices":[{"index":0,"delta":{"content":"${KEY}","content":"ok"}}]}\n\n`;
    const { out } = run([KEY], [raw]);
    expect(out[0]).not.toContain(KEY.slice(0, 12));
    expect(content(eventData(out[0]))).toBe("ok");
  });

  it("follows a top-level string data field across events", () => {
    const { out } = run([KEY], cut(KEY, [10, 10, 100]).map(p => `data: ${JSON.stringify(p)}\n\n`));
    expect(longestRun([KEY], out.map(e => eventData(e) as string).join(""))).toBeLessThan(HOLD_FROM_RUN);
  });

  it("follows data that is not JSON across events too", () => {
    const { out } = run([KEY], cut(KEY, [10, 10, 100]).map(p => `data: ${p}\n\n`));
    const text = out.map(e => e.replace(/^data: /, "").trimEnd()).join("");
    expect(longestRun([KEY], text)).toBeLessThan(HOLD_FROM_RUN);
  });

  it("cuts what an open run holds when MAX_HELD_EVENTS forces the held events out", () => {
    const events = [chat(KEY.slice(0, 11)), ...Array.from({ length: MAX_HELD_EVENTS - 1 }, () => withData("", { choices: [] })), chat(KEY.slice(11))];
    const { out } = run([KEY], events);
    expect(longestRun([KEY], fieldText(out, content))).toBeLessThan(HOLD_FROM_RUN);
  });

  it.each<[string, unknown]>([
    ["more fields than it can follow", Object.fromEntries(Array.from({ length: MAX_FIELD_PATHS + 1 }, (_, i) => [`k${i}`, "v"]))],
    ["fields nested deeper than it follows", JSON.parse(`${"[".repeat(MAX_PATH_DEPTH + 2)}"v"${"]".repeat(MAX_PATH_DEPTH + 2)}`)],
  ])("refuses a stream with %s (fail closed: fields are never merged)", (_t, data) => {
    const guard = new StreamSecretGuard([KEY], withData);
    expect(() => guard.push(withData("", data), data)).toThrow(RouterError);
  });

  it("passes events on once MAX_HELD_CHARS of them are held, cutting the open run", () => {
    const big = withData("", { choices: [], note: "x".repeat(MAX_HELD_CHARS / 2) });
    const { out, passedPerPush } = run([KEY], [chat(KEY.slice(0, 8)), big, big, chat(KEY.slice(8))]);
    expect(passedPerPush.slice(0, 3)).toEqual([0, 0, 3]);
    expect(longestRun([KEY], fieldText(out, content))).toBeLessThan(HOLD_FROM_RUN);
  });

  it("passes events on after MAX_HELD_EVENTS even while a run is open", () => {
    const events = [chat(KEY.slice(0, 8)), ...Array.from({ length: MAX_HELD_EVENTS + 5 }, () => withData("", { choices: [] }))];
    const { passedPerPush } = run([KEY], events);
    expect(passedPerPush.slice(0, MAX_HELD_EVENTS - 1).every(n => n === 0)).toBe(true);
    expect(passedPerPush[MAX_HELD_EVENTS - 1]).toBe(MAX_HELD_EVENTS);
  });

  it("never lets a run of the redaction length through, however a stream is cut (random cuts)", () => {
    let seed = 11;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let round = 0; round < 300; round++) {
      const secret = round % 2 === 0 ? KEY : TOKEN;
      const text = `${"lorem ipsum ".repeat(rnd(5))}${secret}${" dolor".repeat(rnd(5))}`;
      const sizes = Array.from({ length: 2000 }, () => 1 + rnd(round % 3 === 0 ? 4 : 30));
      const { out } = run([KEY, TOKEN], cut(text, sizes).map(chat));
      expect(longestRun([secret], fieldText(out, content))).toBeLessThan(HOLD_FROM_RUN);
    }
  });
});

describe("redactMarked", () => {
  it.each<[string, string, number[], string]>([
    ["one run", "abcdef", [0, 0, 1, 1, 0, 0], "ab[redacted]ef"],
    ["two runs", "abcdef", [1, 0, 0, 0, 0, 1], "[redacted]bcde[redacted]"],
    ["all", "abc", [1, 1, 1], "[redacted]"],
    ["none", "abc", [0, 0, 0], "abc"],
  ])("%s", (_t, text, marks, expected) => {
    expect(redactMarked(text, Uint8Array.from(marks))).toBe(expected);
  });
});
