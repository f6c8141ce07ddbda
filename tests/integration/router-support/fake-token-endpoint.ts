/**
 * A local Microsoft Entra ID stand-in for Workload Identity (AZURE_AUTHORITY_HOST on loopback): HTTPS on
 * 127.0.0.1 with a throw-away self-signed certificate (MSAL refuses http authorities; the router trusts
 * the certificate through NODE_EXTRA_CA_CERTS). Serves the tenant's OpenID configuration and a token
 * endpoint for the client-credentials grant with a client assertion (the federated token), and records
 * the assertions it saw.
 */
import * as fs from "node:fs";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import forge from "node-forge";

/** A running Entra stand-in. */
export interface FakeTokenEndpoint {
  /** https://127.0.0.1:<port> — the AZURE_AUTHORITY_HOST. */
  authorityHost: string;
  /** PEM file of the certificate, for NODE_EXTRA_CA_CERTS. */
  caFile: string;
  /** The access token it issues (what the upstream must see). */
  accessToken: string;
  /** Client assertions received on the token endpoint. */
  assertions: string[];
  /** Token requests received. */
  tokenRequests(): number;
  close(): Promise<void>;
}

function selfSigned(): { key: string; cert: string } {
  const keys = forge.pki.rsa.generateKeyPair(2048);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = "01";
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 24 * 3600_000);
  const attrs = [{ name: "commonName", value: "127.0.0.1" }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: "basicConstraints", cA: true },
    { name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }] },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { key: forge.pki.privateKeyToPem(keys.privateKey), cert: forge.pki.certificateToPem(cert) };
}

/** How the stand-in's token endpoint behaves. */
export interface FakeTokenEndpointOptions {
  /**
   * Refuse every token request with 400 `invalid_request` / AADSTS70021 (no matching federated
   * identity record), as Entra does when the federated credential is missing or names another subject.
   */
  refuse?: boolean;
}

/**
 * The router's environment for Workload Identity against this stand-in (what the AKS webhook injects:
 * authority host, tenant, client id, federated token file), plus its CA for NODE_EXTRA_CA_CERTS.
 */
export function workloadIdentityEnv(entra: FakeTokenEndpoint, tenantId: string, clientId: string, federatedTokenFile: string): NodeJS.ProcessEnv {
  return { AZURE_AUTHORITY_HOST: entra.authorityHost, AZURE_TENANT_ID: tenantId, AZURE_CLIENT_ID: clientId, AZURE_FEDERATED_TOKEN_FILE: federatedTokenFile, NODE_EXTRA_CA_CERTS: entra.caFile };
}

/** Starts the stand-in on 127.0.0.1; writes its certificate into `dir` (for NODE_EXTRA_CA_CERTS). */
export async function startFakeTokenEndpoint(dir: string, tenantId: string, opts: FakeTokenEndpointOptions = {}): Promise<FakeTokenEndpoint> {
  const { key, cert } = selfSigned();
  const caFile = path.join(dir, "token-endpoint-ca.pem");
  fs.writeFileSync(caFile, cert);
  const accessToken = `entra-${forge.util.bytesToHex(forge.random.getBytesSync(16))}`;
  const assertions: string[] = [];
  let requests = 0;
  let base = "";
  const server = https.createServer({ key, cert }, (req, res) => {
    const url = new URL(req.url ?? "/", base);
    const chunks: Buffer[] = [];
    req.on("data", c => chunks.push(c));
    req.on("end", () => {
      const send = (status: number, body: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
      if (req.method === "GET" && url.pathname === `/${tenantId}/v2.0/.well-known/openid-configuration`) {
        return send(200, {
          issuer: `${base}/${tenantId}/v2.0`,
          authorization_endpoint: `${base}/${tenantId}/oauth2/v2.0/authorize`,
          token_endpoint: `${base}/${tenantId}/oauth2/v2.0/token`,
          end_session_endpoint: `${base}/${tenantId}/oauth2/v2.0/logout`,
          jwks_uri: `${base}/${tenantId}/discovery/v2.0/keys`,
        });
      }
      if (req.method === "POST" && url.pathname === `/${tenantId}/oauth2/v2.0/token`) {
        requests++;
        const form = new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
        if (form.get("grant_type") !== "client_credentials" || !form.get("client_assertion")) {
          return send(400, { error: "invalid_request", error_description: "expected a client assertion" });
        }
        assertions.push(form.get("client_assertion") as string);
        if (opts.refuse) {
          return send(400, { error: "invalid_request", error_description: "AADSTS70021: No matching federated identity record found for presented assertion.", error_codes: [70021] });
        }
        return send(200, { token_type: "Bearer", expires_in: 3599, ext_expires_in: 3599, access_token: accessToken });
      }
      send(404, { error: "not_found" });
    });
  });
  await new Promise<void>(r => server.listen(0, "127.0.0.1", r));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    authorityHost: base,
    caFile,
    accessToken,
    assertions,
    tokenRequests: () => requests,
    close: () => new Promise(r => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
