import { Readable } from "node:stream";
import { RouterError } from "../errors/router-error";
import type { UpstreamResponse } from "../upstream/upstream-fetch";

/** Largest upstream body the router buffers (bytes); embeddings of large batches are the big ones. */
export const MAX_UPSTREAM_BODY_BYTES = 64 * 1024 * 1024;

/** Reads a whole upstream body as UTF-8. Throws Error when it exceeds `maxBytes` (MAX_UPSTREAM_BODY_BYTES). */
export async function readUpstreamBody(response: UpstreamResponse, maxBytes = MAX_UPSTREAM_BODY_BYTES): Promise<string> {
  if (response.body instanceof Readable) return readStream(response.body, maxBytes);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.byteLength;
    if (size > maxBytes) throw new Error(`upstream body larger than ${maxBytes} bytes`);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * readUpstreamBody for a Node stream (undici's body), with listeners instead of an async iterator: the
 * same result with far less per-request garbage on the hot path. The stream is destroyed on every
 * failure (too large, error, closed before its end), which frees or aborts the upstream connection.
 */
function readStream(body: Readable, maxBytes: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err: Error | null) => {
      if (done) return;
      done = true;
      body.off("data", onData).off("end", onEnd).off("error", finish).off("close", onClose);
      if (err) {
        body.destroy();
        reject(err);
      } else resolve(chunks.length === 1 ? chunks[0].toString("utf8") : Buffer.concat(chunks, size).toString("utf8"));
    };
    const onData = (chunk: Buffer | string) => {
      const buf = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      size += buf.byteLength;
      if (size > maxBytes) finish(new Error(`upstream body larger than ${maxBytes} bytes`));
      else chunks.push(buf);
    };
    const onEnd = () => finish(null);
    const onClose = () => finish(new Error("upstream body closed before its end"));
    body.on("data", onData).on("end", onEnd).on("error", finish).on("close", onClose);
    if (body.readableEnded) finish(null);
  });
}

/** Anything in an upstream message that looks like a credential is cut out before an agent sees it. */
const CREDENTIAL_PATTERNS = [
  /bearer\s+[A-Za-z0-9._~+/=-]+/gi,
  /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g,
  /\bsk-[A-Za-z0-9_-]{16,}/g,
  /((?:api[-_]?key|subscription[-_]?key|access[-_]?token|secret)["'=:\s]+)[^\s"',}]+/gi,
];

/** Shortest credential value redacted by value (shorter ones would cut ordinary words). */
const MIN_SECRET_CHARS = 8;

/**
 * Removes credentials from upstream text before an agent sees it (DESIGN §6 hygiene): first by value —
 * every one of `secrets` (the credentials the router sent that upstream, see credentialValues) that
 * occurs, wherever and however it is framed — then anything that looks like one (bearer tokens,
 * JWTs, `sk-` keys, `api-key: …`-style fields), as defence in depth.
 */
export function redactCredentials(text: string, secrets: readonly string[] = []): string {
  let out = redactSecrets(text, secrets);
  for (const p of CREDENTIAL_PATTERNS) out = out.replace(p, m => (/^bearer|^eyJ|^sk-/i.test(m) ? "[redacted]" : m.replace(/((?:key|token|secret)["'=:\s]+).*/i, "$1[redacted]")));
  return out;
}

/** `text` with every occurrence of each secret (of at least MIN_SECRET_CHARS) replaced by `[redacted]`; `text` itself when none occurs (cheap on the hot path). */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret.length >= MIN_SECRET_CHARS && out.includes(secret)) out = out.split(secret).join("[redacted]");
  return out;
}

/**
 * redactSecrets for text that carries JSON (a whole answer, an SSE event, or text that does not parse
 * at all): the secrets are also looked for behind JSON escapes (`\u0041`, `\/`), which hide them from a
 * comparison of bytes, wherever they are (values, keys, a duplicate key's dropped value), and cut out
 * where they stand (redactEscapedSecrets). Only text with such escapes is decoded (cheap otherwise).
 */
export function redactSecretsInJson(text: string, secrets: readonly string[]): string {
  const out = redactSecrets(text, secrets);
  if (secrets.length === 0 || (!out.includes("\\u") && !out.includes("\\/"))) return out;
  return redactEscapedSecrets(out, secrets);
}

/** A JSON escape (RFC 8259 §7): `\uXXXX`, or a backslash and one of `"\/bfnrt`. */
const JSON_ESCAPE = /\\(?:u([0-9a-fA-F]{4})|(["\\/bfnrt]))/g;

/** What each one-character JSON escape stands for. */
const SHORT_ESCAPES: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

/**
 * `text` with every secret (of at least MIN_SECRET_CHARS) that its JSON escapes (`\u0041`, `\/`, `\"`…)
 * spell out replaced by `[redacted]`, in place, whether the text parses or not (a value the parse
 * dropped, a key, text cut off). Each decoded character maps back to the span of text it came from, and a found
 * secret's whole span is cut (an escape half inside is cut whole).
 */
export function redactEscapedSecrets(text: string, secrets: readonly string[]): string {
  // decoded text in segments: [decoded start, text start, text end of an escape or -1 for plain text]
  const segments: [number, number, number][] = [];
  let decoded = "";
  let from = 0;
  for (const m of text.matchAll(JSON_ESCAPE)) {
    if (m.index > from) {
      segments.push([decoded.length, from, -1]);
      decoded += text.slice(from, m.index);
    }
    segments.push([decoded.length, m.index, m.index + m[0].length]);
    decoded += m[1] !== undefined ? String.fromCharCode(parseInt(m[1], 16)) : SHORT_ESCAPES[m[2]];
    from = m.index + m[0].length;
  }
  if (from < text.length) {
    segments.push([decoded.length, from, -1]);
    decoded += text.slice(from);
  }
  /** Where decoded character i came from in `text`: [start, end). */
  const span = (i: number): [number, number] => {
    let lo = 0;
    let hi = segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (segments[mid][0] <= i) lo = mid;
      else hi = mid - 1;
    }
    const [d, t, escapeEnd] = segments[lo];
    return escapeEnd === -1 ? [t + (i - d), t + (i - d) + 1] : [t, escapeEnd];
  };
  const cuts: [number, number][] = [];
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET_CHARS) continue;
    for (let i = decoded.indexOf(secret); i !== -1; i = decoded.indexOf(secret, i + secret.length)) cuts.push([span(i)[0], span(i + secret.length - 1)[1]]);
  }
  if (cuts.length === 0) return text;
  cuts.sort((a, b) => a[0] - b[0]);
  let out = "";
  let at = 0;
  for (const [start, end] of cuts) {
    if (end <= at) continue;
    out += `${text.slice(at, Math.max(at, start))}[redacted]`;
    at = end;
  }
  return out + text.slice(at);
}

/**
 * The credential values in upstream auth headers (`authorization: Bearer <token>` → the token; `api-key`
 * and the like → the value), each followed by its base64 forms (base64Forms), so that an upstream that
 * echoes a request base64-encoded (a debugging proxy, a data URL) gives none away either.
 */
export function credentialValues(headers: Record<string, string>): readonly string[] {
  const raw = Object.values(headers);
  const key = raw.length === 1 ? raw[0] : raw.join("\0");
  const cached = valuesCache.get(key);
  if (cached !== undefined) return cached;
  const out = new Set<string>();
  for (const v of raw) {
    const value = v.replace(/^bearer\s+/i, "").trim();
    if (value.length < MIN_SECRET_CHARS) continue;
    out.add(value);
    for (const form of base64Forms(value)) if (form.length >= MIN_SECRET_CHARS) out.add(form);
  }
  const values = Object.freeze([...out]);
  if (valuesCache.size >= 16) valuesCache.delete(valuesCache.keys().next().value as string);
  valuesCache.set(key, values);
  return values;
}

/** credentialValues of recent auth headers (the same array for the same headers: callers may compare it by identity). */
const valuesCache = new Map<string, readonly string[]>();

/** base64Forms of recent credentials (a token changes about hourly; this runs on every request). */
const formsCache = new Map<string, string[]>();

/**
 * How `value` (as UTF-8) looks inside longer base64 text, in the standard and the URL-safe alphabets
 * (RFC 4648 §4, §5): for each of the three byte alignments it may start at, the characters that
 * depend on its bytes alone. Character j of an encoding covers bits [6j, 6j + 6); after k bytes of
 * something else, the value's bits are [8k, 8(k + n)), so the characters from ⌈8k/6⌉ to before
 * ⌊8(k + n)/6⌋ are its own, whatever comes around it.
 */
export function base64Forms(value: string): string[] {
  const cached = formsCache.get(value);
  if (cached !== undefined) return cached;
  const bytes = Buffer.from(value, "utf8");
  const forms = new Set<string>();
  for (let k = 0; k < 3; k++) {
    const core = Buffer.concat([Buffer.alloc(k), bytes]).toString("base64").slice(Math.ceil((8 * k) / 6), Math.floor((8 * (k + bytes.length)) / 6));
    forms.add(core);
    forms.add(core.replace(/\+/g, "-").replace(/\//g, "_"));
  }
  const out = [...forms];
  if (formsCache.size >= 16) formsCache.delete(formsCache.keys().next().value as string);
  formsCache.set(value, out);
  return out;
}

/**
 * Maps an upstream non-2xx answer (not 429/5xx, those fall back) to what the agent sees:
 * Azure's prompt block (400 `content_filter`) → `content_policy_violation` (403); 401/403 (the
 * router's own credential refused) → `upstream_error` (502, the agent cannot fix it); 404 → `upstream_error`; 413 → `request_too_large`;
 * 400, 409, 422 (the request's content) → `invalid_request` with the upstream's message and `param`,
 * credential-redacted (`secrets` by value, then by pattern: redactCredentials) and truncated; any other
 * status (a redirect, which is never followed, 405, 415…) → `upstream_error` naming the status only.
 */
export function upstreamErrorToRouterError(status: number, body: unknown, upstreamName: string, secrets: readonly string[] = []): RouterError {
  const error = (body as { error?: { message?: unknown; code?: unknown; param?: unknown; innererror?: { code?: unknown } } } | undefined)?.error;
  const message = typeof error?.message === "string" ? redactCredentials(error.message, secrets).slice(0, 1000) : `upstream answered ${status}`;
  if (error?.code === "content_filter" || error?.innererror?.code === "ResponsibleAIPolicyViolation") {
    return new RouterError("content_policy_violation", `content safety: the upstream filtered the prompt: ${message}`);
  }
  if (status === 401 || status === 403) {
    return new RouterError("upstream_error", `upstream ${upstreamName} refused the router's credential (status ${status})`);
  }
  if (status === 404) return new RouterError("upstream_error", `upstream ${upstreamName} has no such deployment or route (status 404)`);
  if (status === 413) return new RouterError("request_too_large", message);
  // what the agent can change: its request's content (400, a conflict, a field the upstream could not process)
  if (status === 400 || status === 409 || status === 422) {
    return new RouterError("invalid_request", message, { param: typeof error?.param === "string" ? redactCredentials(error.param, secrets).slice(0, 200) : undefined });
  }
  // a redirect (never followed: the credential stays with the configured endpoint) or any other status is the upstream's doing
  return new RouterError("upstream_error", `upstream ${upstreamName} answered status ${status}`);
}
