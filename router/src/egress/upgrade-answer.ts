// The destination's answer to a WebSocket opening handshake the egress proxy sent on (RFC 6455 §4.1,
// §4.2.2): only a 101 that switches to websocket turns the connection into a byte relay. Anything else
// (a server that ignores the Upgrade and answers 200, a TLS server on 443, a 4xx) ends it: relaying
// then would let further requests in the same bytes reach the destination undecided (another site on
// a shared address, say).

import type { Socket } from "node:net";

/** The end of a response head. */
const HEAD_END = Buffer.from("\r\n\r\n", "latin1");

/**
 * Whether a response head (its text up to, not including, the blank line) switches the connection to
 * the WebSocket protocol: status line `HTTP/1.1 101 …` and an `Upgrade` field whose value is
 * `websocket` (case-insensitive, RFC 6455 §4.2.2 item 5.2). Pure.
 */
export function switchesToWebSocket(head: string): boolean {
  const lines = head.split("\r\n");
  if (!/^HTTP\/1\.1 101(?: |$)/.test(lines[0])) return false;
  return lines.slice(1).some((line) => /^upgrade[ \t]*:[ \t]*websocket[ \t]*$/i.test(line));
}

/** How waiting for the answer ended: the head and the bytes after it (both to send to the agent), or why not. */
export type UpgradeAnswer = { ok: true; bytes: Buffer } | { ok: false; why: string };

/**
 * Reads `upstream` until the end of the destination's response head (at most `maxBytes`, within
 * `timeoutMs`), then calls `done` once: ok with everything read (the 101 head and any WebSocket
 * bytes after it) when switchesToWebSocket holds, else not ok with why (another status, no head
 * within the limits, the destination closing or failing). Leaves `upstream` paused and without its
 * own listeners; the caller relays it on, or destroys it. Fails closed: nothing but a 101 to
 * websocket is ok.
 */
export function awaitWebSocketAnswer(upstream: Socket, maxBytes: number, timeoutMs: number, done: (answer: UpgradeAnswer) => void): void {
  let read = Buffer.alloc(0);
  let finished = false;
  const finish = (answer: UpgradeAnswer): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    upstream.off("data", onData);
    upstream.off("end", onGone);
    upstream.off("close", onGone);
    upstream.pause();
    done(answer);
  };
  const onData = (chunk: Buffer): void => {
    read = read.length === 0 ? chunk : Buffer.concat([read, chunk]);
    const end = read.indexOf(HEAD_END);
    if (end === -1) {
      if (read.length > maxBytes) finish({ ok: false, why: `no response head within ${maxBytes} bytes` });
      return;
    }
    const head = read.toString("latin1", 0, end);
    finish(switchesToWebSocket(head) ? { ok: true, bytes: read } : { ok: false, why: `the destination answered ${JSON.stringify(head.split("\r\n")[0].slice(0, 80))}, not 101 to websocket` });
  };
  const onGone = (): void => finish({ ok: false, why: "the destination closed before answering" });
  const timer = setTimeout(() => finish({ ok: false, why: `no answer within ${timeoutMs} ms` }), timeoutMs);
  timer.unref();
  upstream.on("data", onData);
  upstream.on("end", onGone);
  upstream.on("close", onGone);
  upstream.resume();
}
