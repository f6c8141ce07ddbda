/**
 * Incremental Server-Sent Events splitter for upstream streams (chat completions and responses).
 * Feeds bytes, yields whole events (text up to and including the blank line) so the router can look
 * at each one (usage, filter results) and pass it on unchanged. Lines end with CRLF, LF or a bare CR
 * (WHATWG HTML "Server-sent events", the event stream format); an event ends at an empty line.
 */

/** Longest event accepted (UTF-16 code units of its text, about bytes); a longer one is an error, not a growing buffer. */
export const MAX_EVENT_CHARS = 16 * 1024 * 1024;

/** Two line ends in a row: the end of an event. */
const EVENT_END = /(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)/g; // a CR before an LF is one line end with it, never a line end of its own

/** Any line end. */
const LINE_END = /\r\n|\r|\n/;

export class SseSplitter {
  private buffer = "";
  /** Where the next search for an event end starts (the text before holds none but the last 3 characters' worth). */
  private scanFrom = 0;
  private readonly decoder = new TextDecoder();

  /**
   * Adds bytes; returns the complete events now available, each with its trailing blank line. Each
   * byte is searched about once, whatever the size of an event and however it is cut into chunks.
   * Throws Error when an event grows past MAX_EVENT_CHARS (the caller ends the stream: fail closed).
   */
  push(bytes: Uint8Array): string[] {
    this.buffer += this.decoder.decode(bytes, { stream: true });
    const events: string[] = [];
    let start = 0;
    EVENT_END.lastIndex = this.scanFrom;
    for (let m = EVENT_END.exec(this.buffer); m !== null; m = EVENT_END.exec(this.buffer)) {
      const end = m.index + m[0].length;
      // a CR last in the buffer may be the first half of a CRLF: decide once the next byte is known
      if (end === this.buffer.length && m[0].endsWith("\r")) break;
      events.push(this.buffer.slice(start, end));
      start = end;
    }
    if (start > 0) this.buffer = this.buffer.slice(start);
    if (this.buffer.length > MAX_EVENT_CHARS) throw new Error(`upstream stream event longer than ${MAX_EVENT_CHARS} characters`);
    this.scanFrom = Math.max(0, this.buffer.length - 3);
    return events;
  }

  /** Whatever is left when the stream ends (an unterminated last event), or "". */
  flush(): string {
    const rest = this.buffer + this.decoder.decode();
    this.buffer = "";
    this.scanFrom = 0;
    return rest;
  }
}

/** The `data:` lines' payload of an event, joined by LF (SSE), or null when it has none. */
export function rawData(event: string): string | null {
  let data: string | null = null;
  for (const line of event.split(LINE_END)) {
    if (!line.startsWith("data:")) continue;
    const value = line.charCodeAt(5) === 0x20 ? line.slice(6) : line.slice(5);
    data = data === null ? value : `${data}\n${value}`;
  }
  return data;
}

/** The JSON payload of an event's `data:` lines, `"[DONE]"`, or undefined when absent or not JSON (see eventHasData). */
export function eventData(event: string): unknown {
  const data = rawData(event);
  if (data === null || data === "") return undefined;
  if (data === "[DONE]") return "[DONE]";
  try {
    return JSON.parse(data);
  } catch {
    return undefined;
  }
}

/** Whether an event has a non-empty `data:` payload (so eventData's undefined means it is not JSON). */
export function eventHasData(event: string): boolean {
  const data = rawData(event);
  return data !== null && data !== "";
}

/** The fields of the SSE format (WHATWG HTML "Server-sent events", interpreting an event stream). */
const SSE_FIELDS = new Set(["data", "event", "id", "retry"]);

/**
 * Whether every line of `event` is an SSE comment (`:` first) or one of the format's fields (`data`,
 * `event`, `id`, `retry`, with or without a value). Any other line (a JSON body sent where a stream
 * was asked for, a field this router does not know) is one a client ignores or reads its own way, and
 * that the router cannot judge.
 */
export function isPlainSseEvent(event: string): boolean {
  for (const line of event.split(LINE_END)) {
    if (line === "" || line.charCodeAt(0) === 0x3a) continue;
    const colon = line.indexOf(":");
    if (!SSE_FIELDS.has(colon === -1 ? line : line.slice(0, colon))) return false;
  }
  return true;
}

/** Whether an upstream's content type is an SSE stream's (`text/event-stream`, any parameters). */
export function isEventStreamType(contentType: string | undefined): boolean {
  return contentType !== undefined && /^\s*text\/event-stream\s*(?:;|$)/i.test(contentType);
}

/** An `event:` value passed on: lower-case words joined by dots or underscores, as OpenAI's event types (`response.output_text.delta`). */
const EVENT_TYPE = /^[a-z_]{1,64}(?:\.[a-z_]{1,64}){0,8}$/;

/** The `event:` line of `event` worth passing on (see EVENT_TYPE), or null. */
function eventTypeLine(event: string): string | null {
  for (const line of event.split(LINE_END)) {
    if (!line.startsWith("event:")) continue;
    const value = line.charCodeAt(6) === 0x20 ? line.slice(7) : line.slice(6);
    return EVENT_TYPE.test(value) ? `event: ${value}` : null;
  }
  return null;
}

/**
 * An SSE event as the router passes it on, with `value` as its data written as JSON: its `event:` line
 * when that names an event type, then one `data:` line; comments, `id:`, `retry:`, other `event:` values
 * and any other line are dropped (text the router does not follow across events, where an upstream
 * could spell out what it must not pass). Lines end in LF, whatever the upstream used (a bare CR kept
 * would let a client read the original line as an event of its own).
 */
export function withData(event: string, value: unknown): string {
  const type = eventTypeLine(event);
  return `${type === null ? "" : `${type}\n`}data: ${JSON.stringify(value)}\n\n`;
}

/** `event` with only what withData keeps, its `data:` lines as they are (for data that is not JSON, or `[DONE]`). */
export function plainEvent(event: string): string {
  const type = eventTypeLine(event);
  const data = event.split(LINE_END).filter(l => l.startsWith("data:"));
  if (type === null && data.length === 0) return "";
  return `${type === null ? "" : `${type}\n`}${data.map(l => `${l}\n`).join("")}\n`;
}

/** plainEvent with `text` as its data (each of its lines a `data:` line). */
export function withRawData(event: string, text: string): string {
  const type = eventTypeLine(event);
  return `${type === null ? "" : `${type}\n`}${text.split("\n").map(l => `data: ${l}\n`).join("")}\n`;
}
