/**
 * A bare HTTPS client for the apiserver of a local-control-plane kubeconfig, for benchmarks that time
 * requests themselves (no client library between the clock and the wire).
 */
import https from "node:https";
import { readFileSync } from "node:fs";

/** An apiserver client: `request` sends `body` as JSON and answers the status and the body's text. */
export interface ApiserverClient {
  request(method: string, path: string, body?: unknown): Promise<{ status: number; body: string }>;
  /** Closes the keep-alive connections. */
  close(): void;
}

/**
 * A keep-alive client with the admin certificate of `kubeconfig` (the inline `*-data` fields a
 * local control plane writes), at most `maxSockets` connections (unbounded when absent). Throws when
 * the kubeconfig lacks the server or a certificate field.
 */
export function apiserverClient(kubeconfig: string, maxSockets?: number): ApiserverClient {
  const kc = readFileSync(kubeconfig, "utf8");
  const field = (key: string) => {
    const m = new RegExp(`${key}: (\\S+)`).exec(kc);
    if (!m) throw new Error(`${kubeconfig}: no ${key}`);
    return m[1]!;
  };
  const b64 = (key: string) => Buffer.from(field(key), "base64");
  const server = field("server");
  const agent = new https.Agent({ keepAlive: true, maxSockets, ca: b64("certificate-authority-data"), cert: b64("client-certificate-data"), key: b64("client-key-data") });
  const request = (method: string, path: string, body?: unknown) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = https.request(`${server}${path}`, { method, agent, headers: body === undefined ? {} : { "content-type": "application/json" } }, res => {
        const chunks: Buffer[] = [];
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      });
      req.on("error", reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  return { request, close: () => agent.destroy() };
}
