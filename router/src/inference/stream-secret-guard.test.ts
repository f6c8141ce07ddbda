import { eventData } from "./sse";
import { HOLD_FROM_RUN, MAX_HELD_EVENTS, MIN_REDACTED_RUN, StreamSecretGuard, redactMarked } from "./stream-secret-guard";
import { noMatch, SubstringMatcher } from "./substring-matcher";

const KEY = "sk-kars0123456789abcdefghijklmnopqrstuvwxyzABCD"; // an API key the router sent upstream
const TOKEN = `eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.${"eyJhdWQiOiJodHRwczovL2NvZ25pdGl2ZXNlcnZpY2VzLmF6dXJlLmNvbSJ9".repeat(8)}.c2lnbmF0dXJl`;

/** An SSE event with `value` as its JSON data (as inference-service's withData writes one). */
function withData(_event: string, value: unknown): string {
  return `data: ${JSON.stringify(value)}\n\n`;
}
const chat = (content: string) => withData("", { id: "chatcmpl-1", object: "chat.completion.chunk", choices: [{ index: 0, delta: { content } }] });
const toolArgs = (args: string) => withData("", { id: "chatcmpl-1", choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: args } }] } }] });
const respDelta = (delta: string) => withData("", { type: "response.output_text.delta", item_id: "msg_1", output_index: 0, content_index: 0, delta });

/** Runs events through a guard; returns each push's output count and every event passed on, in order. */
function run(secrets: string[], events: string[]): { out: string[]; passedPerPush: number[] } {
  const guard = new StreamSecretGuard(secrets, withData);
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
