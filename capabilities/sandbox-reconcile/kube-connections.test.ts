import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makePki } from "../../tests/e2e-kind/local/pki";
import { reuseConnections } from "./kube-connections";

// A loopback HTTPS "apiserver" that answers every GET with a Namespace and counts TLS handshakes.
const dir = mkdtempSync(join(tmpdir(), "kars-kube-connections-"));
const pki = makePki(join(dir, "pki"));
let handshakes = 0;
const server = https.createServer({ cert: readFileSync(pki.apiserverCert), key: readFileSync(pki.apiserverKey) }, (req, res) => {
  res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: req.url?.split("/").pop() } }));
});
server.on("secureConnection", () => handshakes++);
beforeAll(() => new Promise<void>(r => server.listen(0, "127.0.0.1", r)));
afterAll(() => {
  server.closeAllConnections();
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * What @kubernetes/client-node 1.x's KubeConfig.applySecurityAuthentication does with a context (an
 * ESM package jest cannot load here): a new https.Agent with the cluster's TLS settings, every call.
 */
const libraryKubeConfig = (tls: https.AgentOptions) => ({
  applySecurityAuthentication: async (context: { setAgent(a: https.Agent): void }) => context.setAgent(new https.Agent({ ...tls })),
});
const context = () => {
  let agent: https.Agent | undefined;
  return { setAgent: (a: https.Agent) => void (agent = a), getAgent: () => agent };
};
/** One GET through the agent the (wrapped) KubeConfig chose, as the generated API client sends it. */
async function get(kc: ReturnType<typeof libraryKubeConfig>, path: string): Promise<string> {
  const ctx = context();
  await kc.applySecurityAuthentication(ctx);
  return new Promise((resolve, reject) => {
    https
      .get({ host: "127.0.0.1", port: (server.address() as AddressInfo).port, path, agent: ctx.getAgent() }, res => {
        let body = "";
        res.on("data", d => (body += d));
        res.on("end", () => resolve((JSON.parse(body) as { metadata: { name: string } }).metadata.name));
      })
      .on("error", reject);
  });
}
const trusted = () => ({ ca: readFileSync(pki.caCert) });

describe("reuseConnections", () => {
  it.each([
    ["the library alone: one TLS handshake per request", false, 5],
    ["reused: one handshake for five requests", true, 1],
  ])("%s", async (_what, reuse, expected) => {
    const kc = libraryKubeConfig(trusted());
    if (reuse) reuseConnections(kc as never);
    handshakes = 0;
    for (let i = 0; i < 5; i++) expect(await get(kc, `/api/v1/namespaces/ns-${i}`)).toBe(`ns-${i}`);
    expect(handshakes).toBe(expected);
  });

  it("keeps the library's TLS settings: an unknown CA is still refused; other settings get their own connections", async () => {
    const wrong = libraryKubeConfig({ ca: readFileSync(makePki(join(dir, "other-pki")).caCert) });
    reuseConnections(wrong as never);
    await expect(get(wrong, "/api/v1/namespaces/x")).rejects.toThrow(/certificate|self.signed|unable to verify/i);
    let settings = trusted() as https.AgentOptions;
    const kc = { applySecurityAuthentication: async (c: { setAgent(a: https.Agent): void }) => c.setAgent(new https.Agent({ ...settings })) };
    reuseConnections(kc as never);
    handshakes = 0;
    await get(kc, "/a");
    await get(kc, "/b");
    settings = { ...trusted(), servername: "localhost" }; // e.g. tls-server-name changed: not the same connections
    await get(kc, "/c");
    await get(kc, "/d");
    expect(handshakes).toBe(2);
  });

  it("leaves an agent of another kind (a proxy's, plain HTTP) as the library made it", async () => {
    class ProxyAgent extends https.Agent {}
    const made = new ProxyAgent();
    const kc = { applySecurityAuthentication: async (c: { setAgent(a: https.Agent): void }) => c.setAgent(made) };
    reuseConnections(kc as never);
    const ctx = context();
    await kc.applySecurityAuthentication(ctx);
    expect(ctx.getAgent()).toBe(made);
  });
});
