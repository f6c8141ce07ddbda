import { createHash } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { ImageVerificationError } from "./errors";
import { parseBearerChallenge, RegistryClient } from "./registry-client";

const sha = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const MANIFEST = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", layers: [] }));
const BLOB = Buffer.from("payload");
const BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json";

/** What the fake registry saw: method, url and authorization of each request. */
interface Seen {
  url: string;
  authorization?: string;
}

/**
 * A fake registry on loopback. `routes` answers by path; `/token` is a Docker token endpoint that
 * wants basic credentials `u:p`; with `auth` every /v2/ path wants a Bearer token first.
 */
async function fakeRegistry(routes: Record<string, (req: http.IncomingMessage, res: http.ServerResponse) => void>, auth = false) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ url: req.url ?? "", authorization: req.headers.authorization });
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/token") {
      if (req.headers.authorization !== `Basic ${Buffer.from("u:p").toString("base64")}`) return void res.writeHead(401).end();
      return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token: `tok-for-${url.searchParams.get("scope")}`, expires_in: 300 }));
    }
    if (auth && url.pathname.startsWith("/v2/") && !String(req.headers.authorization ?? "").startsWith("Bearer tok-for-repository:team/app:pull")) {
      return void res.writeHead(401, { "www-authenticate": `Bearer realm="http://${req.headers.host}/token",service="fake",scope="repository:team/app:pull"` }).end();
    }
    const route = routes[url.pathname];
    if (route) return route(req, res);
    res.writeHead(404).end();
  });
  await new Promise<void>(r => server.listen(0, "127.0.0.1", r));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { host, seen, close: () => new Promise(r => server.close(r)) };
}

const signal = () => AbortSignal.timeout(5000);
const json = (body: Buffer | string, type = "application/vnd.oci.image.manifest.v1+json") => (_req: http.IncomingMessage, res: http.ServerResponse) => res.writeHead(200, { "content-type": type }).end(body);

describe("RegistryClient", () => {
  it("gets a manifest by tag, digesting what it served (not trusting a header)", async () => {
    const reg = await fakeRegistry({ "/v2/team/app/manifests/v1": (_q, res) => res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json", "docker-content-digest": `sha256:${"0".repeat(64)}` }).end(MANIFEST) });
    const client = new RegistryClient({ plainHttp: [reg.host] });
    const m = await client.manifest(reg.host, "team/app", "v1", signal());
    expect([m.digest, m.mediaType]).toEqual([sha(MANIFEST), "application/vnd.oci.image.manifest.v1+json"]);
    await client.close();
    await reg.close();
  });

  it("resolves a tag with a HEAD and its Docker-Content-Digest, or a GET when the header is missing", async () => {
    const named = `sha256:${"e".repeat(64)}`;
    const reg = await fakeRegistry({
      "/v2/team/app/manifests/v1": (req, res) => res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json", "docker-content-digest": named }).end(req.method === "HEAD" ? undefined : MANIFEST),
      "/v2/team/app/manifests/v2": (req, res) => res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" }).end(req.method === "HEAD" ? undefined : MANIFEST),
    });
    const client = new RegistryClient({ plainHttp: [reg.host] });
    expect(await client.resolveTag(reg.host, "team/app", "v1", signal())).toBe(named);
    expect(await client.resolveTag(reg.host, "team/app", "v2", signal())).toBe(sha(MANIFEST));
    expect(reg.seen.map(x => x.url)).toEqual(["/v2/team/app/manifests/v1", "/v2/team/app/manifests/v2", "/v2/team/app/manifests/v2"]);
    const missing = (await client.resolveTag(reg.host, "team/app", "v3", signal()).catch((e: unknown) => e)) as ImageVerificationError;
    expect(missing.code).toBe("image_not_found");
    await client.close();
    await reg.close();
  });

  it("checks a sha512 digest with sha512", async () => {
    const d512 = `sha512:${createHash("sha512").update(MANIFEST).digest("hex")}`;
    const reg = await fakeRegistry({ [`/v2/team/app/manifests/${d512}`]: json(MANIFEST) });
    const client = new RegistryClient({ plainHttp: [reg.host] });
    expect((await client.manifest(reg.host, "team/app", d512, signal())).digest).toBe(d512);
    await client.close();
    await reg.close();
  });

  it("refuses content that does not match the digest asked for (manifest and blob)", async () => {
    const d = sha("something else");
    const reg = await fakeRegistry({ [`/v2/team/app/manifests/${d}`]: json(MANIFEST), [`/v2/team/app/blobs/${d}`]: json(BLOB, "application/octet-stream") });
    const client = new RegistryClient({ plainHttp: [reg.host] });
    for (const p of [client.manifest(reg.host, "team/app", d, signal()), client.blob(reg.host, "team/app", d, signal())]) {
      const err = (await p.catch((e: unknown) => e)) as ImageVerificationError;
      expect([err.code, err.message]).toEqual(["digest_mismatch", expect.stringContaining(`${d}`)]);
    }
    await client.close();
    await reg.close();
  });

  it("answers a Bearer challenge with a token for repository:<name>:pull, sent with the pull secret's basic credentials, and reuses it", async () => {
    const reg = await fakeRegistry({ "/v2/team/app/manifests/v1": json(MANIFEST) }, true);
    const client = new RegistryClient({ plainHttp: [reg.host], credentials: new Map([[reg.host, { username: "u", password: "p" }]]) });
    await client.manifest(reg.host, "team/app", "v1", signal());
    await client.manifest(reg.host, "team/app", "v1", signal());
    expect(reg.seen.map(s => `${s.url.split("?")[0]} ${s.authorization?.split(" ")[0] ?? "-"}`)).toEqual([
      "/v2/team/app/manifests/v1 -",
      "/token Basic",
      "/v2/team/app/manifests/v1 Bearer",
      "/v2/team/app/manifests/v1 Bearer",
    ]);
    expect(new URL(reg.seen[1].url, "http://x").searchParams.get("scope")).toBe("repository:team/app:pull");
    await client.close();
    await reg.close();
  });

  it.each<[string, (port: number) => string, RegExp]>([
    ["an address literal", port => `http://127.0.0.2:${port}/token`, /the registry sends kars to a non-public address \(127\.0\.0\.2\); only its own host may be one/],
    ["a name resolving to one", port => `http://localhost:${port}/token`, /cannot reach the registry \(EKARS_NON_PUBLIC\)/],
  ])("refuses a token realm on another host at a non-public address (%s): no SSRF through a registry", async (_t, realm, why) => {
    const seen: string[] = [];
    const server = http.createServer((req, res) => {
      seen.push(`${req.headers.host} ${req.url}`);
      res.writeHead(401, { "www-authenticate": `Bearer realm="${realm((server.address() as AddressInfo).port)}",service="x"` }).end();
    });
    await new Promise<void>(r => server.listen(0, "127.0.0.1", r));
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const client = new RegistryClient({ plainHttp: [host] });
    const err = (await client.manifest(host, "team/app", "v1", signal()).catch((e: unknown) => e)) as ImageVerificationError;
    expect([err.code, err.message]).toEqual(["registry_unreachable", expect.stringMatching(why)]);
    expect(seen).toEqual([`${host} /v2/team/app/manifests/v1`]);
    await client.close();
    await new Promise(r => server.close(r));
  });

  it("answers a Basic challenge with the registry's credentials, and without them says registry_unauthorized", async () => {
    const server = http.createServer((req, res) => {
      if (req.headers.authorization === `Basic ${Buffer.from("u:p").toString("base64")}`) return void res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" }).end(MANIFEST);
      res.writeHead(401, { "www-authenticate": 'Basic realm="registry"' }).end();
    });
    await new Promise<void>(r => server.listen(0, "127.0.0.1", r));
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const withCreds = new RegistryClient({ plainHttp: [host], credentials: () => new Map([[host, { username: "u", password: "p" }]]) });
    expect((await withCreds.manifest(host, "team/app", "v1", signal())).digest).toBe(sha(MANIFEST));
    const without = new RegistryClient({ plainHttp: [host] });
    const err = (await without.manifest(host, "team/app", "v1", signal()).catch((e: unknown) => e)) as ImageVerificationError;
    expect([err.code, err.message]).toEqual(["registry_unauthorized", `${host}/team/app: the registry asks for authentication kars does not speak (Basic)`]);
    await withCreds.close();
    await without.close();
    await new Promise(r => server.close(r));
  });

  it("says registry_unauthorized, without the credentials, when the token endpoint refuses them", async () => {
    const reg = await fakeRegistry({ "/v2/team/app/manifests/v1": json(MANIFEST) }, true);
    const client = new RegistryClient({ plainHttp: [reg.host], credentials: new Map([[reg.host, { username: "u", password: "wrong-secret" }]]) });
    const err = (await client.manifest(reg.host, "team/app", "v1", signal()).catch((e: unknown) => e)) as ImageVerificationError;
    expect([err.code, err.message]).toEqual(["registry_unauthorized", `${reg.host}: the token endpoint answered 401`]);
    expect(JSON.stringify(err)).not.toContain("wrong-secret");
    await client.close();
    await reg.close();
  });

  it("follows a blob redirect to storage without sending the registry token there", async () => {
    const storage = await fakeRegistry({ "/bucket/blob": json(BLOB, "application/octet-stream") });
    const reg = await fakeRegistry({ [`/v2/team/app/blobs/${sha(BLOB)}`]: (_q, res) => res.writeHead(307, { location: `http://${storage.host}/bucket/blob` }).end() }, true);
    // storage on another origin over http is refused (only https leaves the registry's origin) …
    const client = new RegistryClient({ plainHttp: [reg.host], credentials: new Map([[reg.host, { username: "u", password: "p" }]]) });
    const err = (await client.blob(reg.host, "team/app", sha(BLOB), signal()).catch((e: unknown) => e)) as ImageVerificationError;
    expect([err.code, err.message]).toEqual(["registry_unreachable", expect.stringContaining("redirects to http: 127.0.0.1")]);
    expect(storage.seen).toEqual([]);
    await client.close();
    await reg.close();
    // … and a same-origin redirect is followed, with no Authorization header on the hop
    const same = await fakeRegistry({
      [`/v2/team/app/blobs/${sha(BLOB)}`]: (_q, res) => res.writeHead(302, { location: "/storage/blob" }).end(),
      "/storage/blob": json(BLOB, "application/octet-stream"),
    }, true);
    const c2 = new RegistryClient({ plainHttp: [same.host], credentials: new Map([[same.host, { username: "u", password: "p" }]]) });
    expect((await c2.blob(same.host, "team/app", sha(BLOB), signal())).toString()).toBe("payload");
    expect(same.seen.map(s => `${s.url.split("?")[0]} ${s.authorization?.split(" ")[0] ?? "-"}`)).toEqual([`/v2/team/app/blobs/${sha(BLOB)} -`, "/token Basic", `/v2/team/app/blobs/${sha(BLOB)} Bearer`, "/storage/blob -"]);
    await c2.close();
    await same.close();
    await storage.close();
  });

  it("says timeout when the deadline cuts a body being read, and names no address when it cannot connect", async () => {
    const reg = await fakeRegistry({ "/v2/team/app/manifests/v1": (_q, res) => res.writeHead(200, { "content-type": "application/json" }).write("{") });
    const client = new RegistryClient({ plainHttp: [reg.host, "127.0.0.1:1"] });
    const slow = (await client.manifest(reg.host, "team/app", "v1", AbortSignal.timeout(300)).catch((e: unknown) => e)) as ImageVerificationError;
    expect([slow.code, slow.message]).toEqual(["timeout", `${reg.host}: no answer before the verification deadline`]);
    const gone = (await client.manifest("127.0.0.1:1", "team/app", "v1", signal()).catch((e: unknown) => e)) as ImageVerificationError;
    expect([gone.code, gone.message]).toEqual(["registry_unreachable", "127.0.0.1:1: cannot reach the registry (ECONNREFUSED)"]);
    await client.close();
    await reg.close();
  });

  it("hints at KARS_IMAGE_PLAIN_HTTP_REGISTRIES when https meets a plain-http registry", async () => {
    const reg = await fakeRegistry({ "/v2/team/app/manifests/v1": json(MANIFEST) });
    const client = new RegistryClient();
    const err = (await client.manifest(reg.host, "team/app", "v1", signal()).catch((e: unknown) => e)) as ImageVerificationError;
    expect([err.code, err.message]).toEqual(["registry_unreachable", expect.stringMatching(/cannot reach the registry \((ERR_SSL_WRONG_VERSION_NUMBER|EPROTO)\); if it serves plain http \(a test registry\), name it in KARS_IMAGE_PLAIN_HTTP_REGISTRIES$/)]);
    await client.close();
    await reg.close();
  });

  it("refuses a manifest over the size limit", async () => {
    const big = Buffer.alloc(4 * 1024 * 1024 + 1, 32);
    const reg = await fakeRegistry({ "/v2/team/app/manifests/v1": json(big) });
    const client = new RegistryClient({ plainHttp: [reg.host] });
    const err = (await client.manifest(reg.host, "team/app", "v1", signal()).catch((e: unknown) => e)) as ImageVerificationError;
    expect([err.code, err.message]).toEqual(["unsupported", expect.stringMatching(/larger than 4194304 bytes/)]);
    await client.close();
    await reg.close();
  });

  describe("referrers", () => {
    const d = sha(MANIFEST);
    const index = (types: string[]) => JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: types.map((t, i) => ({ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: sha(String(i)), size: 1, artifactType: t })) });

    it("uses the referrers API when the registry has it, and filters by artifact type itself", async () => {
      const reg = await fakeRegistry({ [`/v2/team/app/referrers/${d}`]: json(index([BUNDLE_TYPE, "application/spdx+json"]), "application/vnd.oci.image.index.v1+json") });
      const client = new RegistryClient({ plainHttp: [reg.host] });
      const found = await client.referrers(reg.host, "team/app", d, BUNDLE_TYPE, signal());
      expect(found.map(f => f.digest)).toEqual([sha("0")]);
      expect(reg.seen.map(s => s.url)).toEqual([`/v2/team/app/referrers/${d}?artifactType=${encodeURIComponent(BUNDLE_TYPE)}`]);
      await client.close();
      await reg.close();
    });

    it("falls back to the referrers tag schema without the API, and finds none when neither exists", async () => {
      const tag = d.replace(":", "-");
      const reg = await fakeRegistry({ [`/v2/team/app/manifests/${tag}`]: json(index([BUNDLE_TYPE]), "application/vnd.oci.image.index.v1+json") });
      const client = new RegistryClient({ plainHttp: [reg.host] });
      expect((await client.referrers(reg.host, "team/app", d, BUNDLE_TYPE, signal())).length).toBe(1);
      expect(await client.referrers(reg.host, "team/other", d, BUNDLE_TYPE, signal())).toEqual([]);
      await client.close();
      await reg.close();
    });

    it.each([400, 405, 406, 501])("takes a %i from the referrers API as 'no API' and uses the tag schema", async status => {
      const tag = d.replace(":", "-");
      const reg = await fakeRegistry({ [`/v2/team/app/referrers/${d}`]: (_q, res) => res.writeHead(status).end(), [`/v2/team/app/manifests/${tag}`]: json(index([BUNDLE_TYPE]), "application/vnd.oci.image.index.v1+json") });
      const client = new RegistryClient({ plainHttp: [reg.host] });
      expect((await client.referrers(reg.host, "team/app", d, BUNDLE_TYPE, signal())).length).toBe(1);
      await client.close();
      await reg.close();
    });

    it("fails closed when the referrers API errs (an unreachable signature store is not 'unsigned')", async () => {
      const reg = await fakeRegistry({ [`/v2/team/app/referrers/${d}`]: (_q, res) => res.writeHead(500).end() });
      const client = new RegistryClient({ plainHttp: [reg.host] });
      const err = (await client.referrers(reg.host, "team/app", d, BUNDLE_TYPE, signal()).catch((e: unknown) => e)) as ImageVerificationError;
      expect(err.code).toBe("registry_unreachable");
      await client.close();
      await reg.close();
    });
  });
});

describe("parseBearerChallenge", () => {
  it.each<[string, Record<string, string> | null]>([
    ['Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"', { realm: "https://auth.example/token", service: "registry.example", scope: "repository:a/b:pull" }],
    ["bearer realm=https://auth.example/token", { realm: "https://auth.example/token" }],
    ['Basic realm="x"', null],
    ["", null],
  ])("%p", (header, expected) => {
    expect(parseBearerChallenge(header)).toEqual(expected);
  });
});
