/**
 * A loopback stand-in for the Azure Instance Metadata Service token endpoint (what the router's
 * ManagedIdentityCredential reaches through `AZURE_POD_IDENTITY_AUTHORITY_HOST`, never 169.254.169.254).
 * Answers like real IMDS (https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token#get-a-token-using-http):
 *   GET /metadata/identity/oauth2/token?api-version=…&resource=…[&client_id=…] with `Metadata: true`
 *     → 200 `{access_token, refresh_token, expires_in, expires_on, not_before, resource, token_type}`
 *       (numbers as strings, as IMDS sends them);
 *   without the `Metadata: true` header (the availability probe of @azure/identity) → 400
 *     `{"error":"invalid_request","error_description":"Required metadata header not specified"}`;
 *   with `X-Forwarded-For` (IMDS refuses proxied calls), without api-version or without resource → 400;
 *   any other path → 404. The token path is matched with or without a trailing slash: MSAL canonicalises
 *   the AZURE_POD_IDENTITY_AUTHORITY_HOST URL and asks for `/metadata/identity/oauth2/token/`.
 * Records every request it received, so tests can assert what the router asked for.
 */
import { randomBytes } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";

/** The IMDS token path (the same on 169.254.169.254 and behind AZURE_POD_IDENTITY_AUTHORITY_HOST). */
export const IMDS_TOKEN_PATH = "/metadata/identity/oauth2/token";

/** One request the stand-in received: its path, query and headers (it has no body). */
export interface ImdsRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: http.IncomingHttpHeaders;
}

/** A running IMDS stand-in on 127.0.0.1. */
export interface FakeImds {
  /** `http://127.0.0.1:<port>` — the value for AZURE_POD_IDENTITY_AUTHORITY_HOST (no trailing slash: MSAL appends the path). */
  authorityHost: string;
  /** The access token it issues (what the upstream must see as `Authorization: Bearer …`). */
  accessToken: string;
  /** Every request received, in order (token requests and anything else). */
  requests: ImdsRequest[];
  /** Requests that were answered with a token. */
  tokenRequests(): ImdsRequest[];
  close(): Promise<void>;
}

/** Starts the stand-in; its tokens are valid for `expiresInSeconds` (default 3599, like IMDS). */
export async function startFakeImds(expiresInSeconds = 3599): Promise<FakeImds> {
  const accessToken = `imds-${randomBytes(16).toString("hex")}`;
  const requests: ImdsRequest[] = [];
  const issued: ImdsRequest[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://imds.invalid");
    const seen: ImdsRequest = { method: req.method ?? "", path: url.pathname, query: Object.fromEntries(url.searchParams), headers: req.headers };
    requests.push(seen);
    const send = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) }).end(text);
    };
    req.resume();
    if (req.method !== "GET" || url.pathname.replace(/\/$/, "") !== IMDS_TOKEN_PATH) return send(404, { error: "not_found", error_description: `no route ${url.pathname}` });
    if (req.headers.metadata !== "true") return send(400, { error: "invalid_request", error_description: "Required metadata header not specified" });
    if (req.headers["x-forwarded-for"] !== undefined) return send(400, { error: "invalid_request", error_description: "Request contains X-Forwarded-For header" });
    if (!url.searchParams.get("api-version")) return send(400, { error: "invalid_request", error_description: "Required query variable 'api-version' is missing" });
    const resource = url.searchParams.get("resource");
    if (!resource) return send(400, { error: "invalid_request", error_description: "Required audience parameter not specified" });
    issued.push(seen);
    const now = Math.floor(Date.now() / 1000);
    send(200, {
      access_token: accessToken,
      refresh_token: "",
      expires_in: String(expiresInSeconds),
      expires_on: String(now + expiresInSeconds),
      not_before: String(now),
      resource,
      token_type: "Bearer",
    });
  });
  await new Promise<void>(r => server.listen(0, "127.0.0.1", r));
  return {
    authorityHost: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    accessToken,
    requests,
    tokenRequests: () => issued,
    close: () => new Promise(r => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
