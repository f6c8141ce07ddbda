import { PassThrough, Readable } from "node:stream";
import type { UpstreamResponse } from "../upstream/upstream-fetch";
import { RouterError } from "../errors/router-error";
import { base64Forms, credentialValues, readUpstreamBody, redactCredentials, redactEscapedSecrets, redactSecrets, redactSecretsInJson, upstreamErrorToRouterError } from "./upstream-answer";

const response = (body: AsyncIterable<Uint8Array>): UpstreamResponse => ({ status: 200, contentType: "application/json", body, dump: async () => undefined });

describe("readUpstreamBody", () => {
  it("joins a Node stream's chunks as UTF-8 (a character split across chunks included)", async () => {
    const euro = Buffer.from("€");
    const body = Readable.from([Buffer.from('{"a":"'), euro.subarray(0, 1), euro.subarray(1), Buffer.from('"}')], { objectMode: false });
    await expect(readUpstreamBody(response(body))).resolves.toBe('{"a":"€"}');
  });

  it("reads an empty stream as an empty string", async () => {
    const body = new PassThrough();
    body.end();
    await expect(readUpstreamBody(response(body))).resolves.toBe("");
  });

  it("refuses a stream larger than the limit and destroys it", async () => {
    const body = new PassThrough();
    const reading = readUpstreamBody(response(body), 10);
    body.write(Buffer.alloc(6));
    body.write(Buffer.alloc(6));
    await expect(reading).rejects.toThrow("larger than 10 bytes");
    expect(body.destroyed).toBe(true);
  });

  it("rejects when the stream fails or closes before its end", async () => {
    const failing = new PassThrough();
    const a = readUpstreamBody(response(failing));
    failing.write("{");
    failing.destroy(new Error("socket hang up"));
    await expect(a).rejects.toThrow("socket hang up");

    const cut = new PassThrough();
    const b = readUpstreamBody(response(cut));
    cut.write("{");
    cut.destroy();
    await expect(b).rejects.toThrow("closed before its end");
  });

  it("reads any other async iterable (test seams) with the same limit", async () => {
    async function* chunks() {
      yield new TextEncoder().encode("ab");
      yield new TextEncoder().encode("cd");
    }
    await expect(readUpstreamBody(response(chunks()))).resolves.toBe("abcd");
    await expect(readUpstreamBody(response(chunks()), 3)).rejects.toThrow("larger than 3 bytes");
  });
});

describe("upstreamErrorToRouterError", () => {
  it.each<[string, number, unknown, string]>([
    [
      "Azure's chat prompt block (innererror.content_filter_result) is content_policy_violation", 400,
      { error: { message: "The response was filtered", code: "content_filter", param: "prompt", innererror: { code: "ResponsibleAIPolicyViolation", content_filter_result: { hate: { filtered: true, severity: "high" } } } } },
      "content_policy_violation",
    ],
    [
      // the Responses API drops innererror: the filter results are in error.content_filters[] (Azure's chat → Responses migration guidance)
      "Azure's Responses prompt block (error.content_filters[]) is content_policy_violation", 400,
      { error: { message: "The response was filtered", type: "invalid_request_error", param: "prompt", code: "content_filter", content_filters: [{ blocked: true, source_type: "prompt", content_filter_results: { jailbreak: { detected: true, filtered: true } } }] } },
      "content_policy_violation",
    ],
    ["the router's own credential refused is upstream_error", 401, { error: { message: "bad token", code: "401" } }, "upstream_error"],
    ["any other 400 is invalid_request", 400, { error: { message: "bad input", code: "invalid_value", param: "input" } }, "invalid_request"],
    ["a 422 (a field the upstream could not process) is invalid_request", 422, { error: { message: "bad field" } }, "invalid_request"],
    ["a redirect is upstream_error (never followed, never the agent's fault)", 302, undefined, "upstream_error"],
    ["a 405 is upstream_error", 405, { error: { message: "method not allowed" } }, "upstream_error"],
    ["a 415 is upstream_error (the router sends JSON)", 415, undefined, "upstream_error"],
    ["a 404 is upstream_error", 404, undefined, "upstream_error"],
  ])("%s", (_t, status, body, code) => {
    const err = upstreamErrorToRouterError(status, body, "gpt-4o");
    expect(err).toBeInstanceOf(RouterError);
    expect(err.code).toBe(code);
  });
});

describe("redactCredentials", () => {
  const key = "f3a9c0d2e7b14a6b9c8d7e6f5a4b3c2d"; // an Azure-style 32-hex key: no pattern would know it
  it.each<[string, string, string]>([
    // by value: the credentials the router sent, however the upstream frames them
    ["the key in prose", `Incorrect API key provided: ${key}. Find yours at …`, "Incorrect API key provided: [redacted]. Find yours at …"],
    ["the key after 'The key'", `The key ${key} is not valid`, "The key [redacted] is not valid"],
    ["the key in a header echo", `Ocp-Apim-Subscription-Key: ${key}`, "Ocp-Apim-Subscription-Key: [redacted]"],
    ["the key glued to other text", `x${key}y`, "x[redacted]y"],
    // by pattern, for what the router did not send itself
    ["a bearer token", "got Bearer abc.def-ghi", "got [redacted]"],
    ["a JWT", "token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "token [redacted]"],
    ["an sk- key", "key sk-proj-ABCDEFGHIJKLMNOPQRST rejected", "key [redacted] rejected"],
    ["an api-key field", '{"api-key": "zzz"}', '{"api-key": "[redacted]"}'],
    ["a subscription key field", "subscription-key=zzz1", "subscription-key=[redacted]"],
    ["ordinary text stays", "The model gpt-4o does not exist", "The model gpt-4o does not exist"],
  ])("%s", (_t, text, expected) => {
    expect(redactCredentials(text, [key])).toBe(expected);
  });

  it.each<[string, string]>([
    ["\\u escapes", `{"m":"${key.replace(/[a-f]/g, c => `\\u00${c.charCodeAt(0).toString(16)}`)}"}`],
    ["an escaped slash", `{"m":"${"ab/cd/ef/gh".replace(/\//g, "\\/")}"}`],
  ])("redactSecretsInJson finds a secret hidden by %s, and leaves text without one as it was", (_t, text) => {
    const secret = text.includes("ab") ? "ab/cd/ef/gh" : key;
    expect(JSON.parse(text).m).toBe(secret); // the escapes decode to the secret
    expect(text).not.toContain(secret); // which a byte comparison would miss
    const out = redactSecretsInJson(text, [secret]);
    expect(JSON.parse(out)).toEqual({ m: "[redacted]" });
    const clean = '{"m":"caf\\u00e9"}';
    expect(redactSecretsInJson(clean, [secret])).toBe(clean);
  });

  it("credentialValues takes the token out of a bearer header, adds its base64 forms, and ignores values too short to redact safely", () => {
    expect(credentialValues({ authorization: "Bearer tok-123456789" })).toEqual(["tok-123456789", ...base64Forms("tok-123456789")]);
    expect(credentialValues({ "api-key": key, "x-short": "abc" })).toEqual([key, ...base64Forms(key)]);
  });

  it.each<[string, (secret: string) => string]>([
    ["alone", s => Buffer.from(s).toString("base64")],
    ["after one byte", s => Buffer.from(`x${s}`).toString("base64")],
    ["after two bytes, then more", s => Buffer.from(`xy${s} and more`).toString("base64")],
    ["inside a header dump", s => Buffer.from(`POST /v1/chat/completions\r\nauthorization: Bearer ${s}\r\n`).toString("base64")],
    ["URL-safe, after one byte", s => Buffer.from(`x${s}`).toString("base64url")],
  ])("a credential base64-encoded %s is redacted", (_t, encode) => {
    const secret = "tok-\u00e9\u00e8-0123456789+/ABC?>"; // non-ASCII and characters whose encoding differs between the alphabets
    const text = `echo: ${encode(secret)}`;
    const redacted = redactSecrets(text, credentialValues({ authorization: `Bearer ${secret}` }));
    expect(redacted).toContain("[redacted]");
    // what is left of the encoding no longer decodes to the credential
    const left = redacted.replace("echo: ", "").split("[redacted]");
    for (const piece of left) expect(Buffer.from(piece, "base64").toString("latin1")).not.toContain("0123456789");
  });

  it("upstreamErrorToRouterError redacts the message and the param by value", () => {
    const err = upstreamErrorToRouterError(400, { error: { message: `The key ${key} is not valid`, param: `api-key=${key}` } }, "gpt-4o", [key]);
    expect([err.code, err.message, err.details.param]).toEqual(["invalid_request", "The key [redacted] is not valid", "api-key=[redacted]"]);
    expect(JSON.stringify(err)).not.toContain(key);
  });
});

describe("redactEscapedSecrets (text that does not parse as JSON)", () => {
  const KEY = "sk-kars/0123456789abcdef";
  const esc = (s: string) => [...s].map(c => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).join("");
  it.each<[string, string, string]>([
    ["every character escaped, in cut-off JSON", `data: {"content":"${esc(KEY)}`, `data: {"content":"[redacted]`],
    ["some characters escaped, the slash as \\/", `{"a": "${KEY.replace("/", "\\/").replace("k", "\\u006b")}", broken`, `{"a": "[redacted]", broken`],
    ["twice, with text around", `x ${esc(KEY)} y ${esc(KEY)} z`, "x [redacted] y [redacted] z"],
    ["upper-case hex digits", `{${esc(KEY).toUpperCase().replace(/\\U/g, "\\u")}`, "{[redacted]"],
    ["escapes that spell something else stay", `{"a":"\\u0041\\/b", oops`, `{"a":"\\u0041\\/b", oops`],
  ])("%s", (_t, text, expected) => {
    expect(redactEscapedSecrets(text, [KEY])).toBe(expected);
    expect(redactSecretsInJson(text, [KEY])).toBe(expected);
  });
});
