/**
 * Incremental Server-Sent Events splitter for upstream streams (chat completions and responses).
 * Feeds bytes, yields whole events (text up to and including the blank line) so the router can look
 * at each one (usage, filter results) and pass it on unchanged. Handles \n and \r\n line ends.
 */
export class SseSplitter {
  private buffer = "";
  private readonly decoder = new TextDecoder();

  /** Adds bytes; returns the complete events now available, each with its trailing blank line. */
  push(bytes: Uint8Array): string[] {
    this.buffer += this.decoder.decode(bytes, { stream: true });
    const events: string[] = [];
    for (;;) {
      const m = /\r?\n\r?\n/.exec(this.buffer);
      if (!m) break;
      const end = m.index + m[0].length;
      events.push(this.buffer.slice(0, end));
      this.buffer = this.buffer.slice(end);
    }
    return events;
  }

  /** Whatever is left when the stream ends (an unterminated last event), or "". */
  flush(): string {
    const rest = this.buffer + this.decoder.decode();
    this.buffer = "";
    return rest;
  }
}

/** The JSON payload of an event's `data:` lines, `"[DONE]"`, or undefined when absent or not JSON. */
export function eventData(event: string): unknown {
  const data = event
    .split(/\r?\n/)
    .filter(l => l.startsWith("data:"))
    .map(l => l.slice(5).replace(/^ /, ""))
    .join("\n");
  if (data === "") return undefined;
  if (data === "[DONE]") return "[DONE]";
  try {
    return JSON.parse(data);
  } catch {
    return undefined;
  }
}
