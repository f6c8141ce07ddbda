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
 * requests — the router's overhead target needs it). Returns the fetch and a `close` for shutdown.
 */
export function createUndiciFetch(timeouts: FetchTimeouts = { connectMs: 10_000, headersMs: 300_000, bodyMs: 300_000 }): { fetch: UpstreamFetch; close(): Promise<void> } {
  const dispatcher = new Agent({
    connect: { timeout: timeouts.connectMs },
    headersTimeout: timeouts.headersMs,
    bodyTimeout: timeouts.bodyMs,
    keepAliveTimeout: 30_000,
    connections: 256,
    pipelining: 1,
  });
  const fetch: UpstreamFetch = async (url, init) => {
    const res = await request(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...init.headers },
      body: init.body,
      dispatcher,
      signal: init.signal,
    });
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
  return { fetch, close: () => dispatcher.close() };
}
