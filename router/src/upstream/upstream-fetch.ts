import { Agent, request } from "undici";

/** An upstream's answer: status, content type, and the body as a byte stream (must be consumed or dumped). */
export interface UpstreamResponse {
  status: number;
  contentType: string | undefined;
  body: AsyncIterable<Uint8Array>;
  /** Discards the rest of the body (frees the connection; aborts a stream). */
  dump(): Promise<void>;
}

/** POSTs a JSON body upstream. Throws on connection errors and timeouts. The I/O seam tests replace. */
export type UpstreamFetch = (url: string, init: { headers: Record<string, string>; body: string; signal?: AbortSignal }) => Promise<UpstreamResponse>;

/** Timeouts (ms) of the default upstream client; models can think for minutes before the first byte. */
export interface FetchTimeouts {
  connectMs: number;
  headersMs: number;
  bodyMs: number;
}

/**
 * The default UpstreamFetch: undici with a keep-alive connection pool per origin (reused across
 * requests — the router's overhead target needs it). Returns the fetch and `close(graceMs)` for
 * shutdown: it waits up to `graceMs` (default: as long as they take) for requests in flight, then
 * aborts those still open (their bodies end with an error).
 */
export function createUndiciFetch(timeouts: FetchTimeouts = { connectMs: 10_000, headersMs: 300_000, bodyMs: 300_000 }): { fetch: UpstreamFetch; close(graceMs?: number): Promise<void> } {
  const dispatcher = new Agent({
    connect: { timeout: timeouts.connectMs },
    headersTimeout: timeouts.headersMs,
    bodyTimeout: timeouts.bodyMs,
    keepAliveTimeout: 30_000,
    connections: 256,
    pipelining: 1,
  });
  // calls whose answer is not over yet (its body not ended, consumed or destroyed): what close waits for
  let inFlight = 0;
  let allDone: (() => void) | null = null;
  const finished = (): void => {
    if (--inFlight === 0) allDone?.();
  };
  const fetch: UpstreamFetch = async (url, init) => {
    inFlight++;
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(url, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...init.headers },
        body: init.body,
        dispatcher,
        signal: init.signal,
      });
    } catch (err) {
      finished();
      throw err;
    }
    res.body.once("close", finished);
    const ct = res.headers["content-type"];
    return {
      status: res.statusCode,
      contentType: Array.isArray(ct) ? ct[0] : ct,
      body: res.body,
      dump: async () => {
        await res.body.dump().catch(() => undefined);
      },
    };
  };
  const close = async (graceMs = Infinity): Promise<void> => {
    if (inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>(resolve => {
        allDone = resolve;
        if (Number.isFinite(graceMs)) timer = setTimeout(resolve, graceMs);
      });
      clearTimeout(timer);
    }
    // (undici's destroy after its close would be a no-op: the pools are gone, the calls go on)
    if (inFlight > 0) await dispatcher.destroy(); // calls still open (a stream that trickles on): aborted
    else await dispatcher.close();
  };
  return { fetch, close };
}
