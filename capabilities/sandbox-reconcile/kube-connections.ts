/**
 * Keep-alive connections to the apiserver for @kubernetes/client-node clients.
 */
import { createHash } from "node:crypto";
import https from "node:https";
import type { KubeConfig } from "@kubernetes/client-node";

/** Distinct TLS settings kept at once (one in practice: one kubeconfig, one cluster). */
const MAX_AGENTS = 8;

/**
 * Makes every API client built from `kc` reuse keep-alive HTTPS connections (at most `maxSockets`
 * per distinct TLS settings). @kubernetes/client-node 1.x builds a new `https.Agent` for every request
 * (`KubeConfig.applySecurityAuthentication`), so each request paid a TCP connect and a full TLS
 * handshake, with the CA and client certificate parsed anew: bench:reconcile found most of the
 * controller's CPU there. The library's agent is still made as before (so its TLS settings stay the
 * library's: CA, client certificate, `insecure-skip-tls-verify`, `tls-server-name`) and then swapped
 * for a shared keep-alive agent with exactly those options. Agents of another kind (HTTP, SOCKS or
 * HTTPS proxies) are left as the library made them. Mutates `kc`; never throws beyond what the
 * library's own method throws.
 */
export function reuseConnections(kc: KubeConfig, maxSockets = 16): void {
  const apply = kc.applySecurityAuthentication.bind(kc);
  const agents = new Map<string, https.Agent>();
  kc.applySecurityAuthentication = async context => {
    await apply(context);
    const made = context.getAgent();
    if (!made || made.constructor !== https.Agent) return;
    const options = (made as https.Agent).options;
    const key = tlsSettingsKey(options);
    let agent = agents.get(key);
    if (!agent) {
      if (agents.size >= MAX_AGENTS) {
        const [oldest, old] = agents.entries().next().value as [string, https.Agent];
        agents.delete(oldest);
        old.destroy();
      }
      agent = new https.Agent({ ...options, keepAlive: true, maxSockets });
      agents.set(key, agent);
    }
    context.setAgent(agent);
  };
}

/** A digest of the TLS settings an agent connects with (credential material is hashed, never kept as text). */
function tlsSettingsKey(o: https.AgentOptions): string {
  const parts = [o.ca, o.cert, o.key, o.pfx, o.passphrase, o.rejectUnauthorized, o.servername, o.ciphers, o.secureProtocol].map(v =>
    v === undefined ? null : Buffer.isBuffer(v) ? v.toString("base64") : Array.isArray(v) ? v.map(x => (Buffer.isBuffer(x) ? x.toString("base64") : x)) : v,
  );
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex");
}
