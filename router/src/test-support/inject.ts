import type { FastifyInstance } from "fastify";
import { request } from "undici";

/** A response as tests read it (the subset of light-my-request's they use). */
export interface TestResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json(): any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/**
 * Sends one real HTTP request to a fastify app listening on 127.0.0.1 (ephemeral port, started on first
 * use). Stands in for `app.inject()`: under jest, fastify's light-my-request cannot load its ESM-only
 * `cookie` dependency. A string payload is sent as-is; anything else as JSON.
 */
export async function inject(
  app: FastifyInstance,
  opts: { method: "GET" | "POST"; url: string; payload?: unknown; headers?: Record<string, string> },
): Promise<TestResponse> {
  if (!app.server.listening) await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  if (!address || typeof address === "string") throw new Error("app is not listening on TCP");
  const isString = typeof opts.payload === "string";
  const headers: Record<string, string> = { ...(opts.payload !== undefined && !isString ? { "content-type": "application/json" } : {}), ...opts.headers };
  if (isString && !Object.keys(headers).some(h => h.toLowerCase() === "content-type")) headers["content-type"] = "text/plain";
  const res = await request(`http://127.0.0.1:${address.port}${opts.url}`, {
    method: opts.method,
    headers,
    body: opts.payload === undefined ? undefined : isString ? (opts.payload as string) : JSON.stringify(opts.payload),
  });
  const body = await res.body.text();
  return { statusCode: res.statusCode, headers: res.headers, body, json: () => JSON.parse(body) };
}
