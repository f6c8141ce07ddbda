/**
 * Upper-bound token estimates for budget reservation (DESIGN §6: reserve prompt estimate + max tokens
 * before forwarding, so concurrent requests can never overshoot).
 *
 * Why bytes: OpenAI's tokenizers (cl100k, o200k) are byte-level BPE, so every text token covers at
 * least one UTF-8 byte; the JSON serialisation of the prompt (keys, quotes, escapes) is therefore at
 * least as many bytes as the prompt has tokens, including the 3–4 tokens of per-message framing.
 * Images are not proportional to their URL, so each image part adds IMAGE_PART_TOKENS.
 * The request body is attacker-controlled; these functions only read it.
 */

import { foldKey } from "../policy/field-names";

/**
 * Tokens reserved per image part: at least what one image costs on OpenAI's documented vision models —
 * tile-based (gpt-4o: 85 + 170 × at most 8 tiles = 1,445; gpt-4o-mini with detail low: 2,833) and
 * patch-based (at most 1,536 patches × the largest multiplier, 2.46 = 3,779). One exception stays
 * above it: gpt-4o-mini at high detail (2,833 + 5,667 per tile), for which a profile sets the upstream's
 * `imageTokens`; an excess is charged at settlement and logged (inference-service.ts settleToUsage).
 * Source: https://platform.openai.com/docs/guides/images-vision
 */
export const IMAGE_PART_TOKENS = 3800;

/** Largest completion allowance an agent may ask for (max_completion_tokens, max_tokens, max_output_tokens), tokens. */
export const MAX_REQUESTED_TOKENS = 10_000_000;

/** Deepest nesting of a prompt field's JSON (arrays and objects) that is measured; deeper is refused. */
export const MAX_PROMPT_DEPTH = 64;

export type EstimateKind = "chat" | "responses" | "embeddings";

/**
 * Upper bound of the prompt tokens of a request body of the given API: the UTF-8 bytes of the whole
 * body's JSON — every field, not only the prompt's, since an upstream may render any field it knows
 * into the prompt (vLLM's `documents`, `chat_template_kwargs`) and the router forwards them all — plus
 * `imageTokens` for each image part (default IMAGE_PART_TOKENS; the profile's per-upstream
 * `imageTokens`). Throws TypeError when any field nests deeper than MAX_PROMPT_DEPTH (the caller's 400;
 * never a stack overflow when the body is measured here or serialised upstream).
 */
export function estimatePromptTokens(_kind: EstimateKind, body: Record<string, unknown>, imageTokens: number = IMAGE_PART_TOKENS): number {
  let images = 0;
  // first: the walk bounds the depth that JSON.stringify recurses into
  for (const field in body) images += countImageParts(body[field], 0, field);
  return Buffer.byteLength(JSON.stringify(body), "utf8") + images * imageTokens;
}

/**
 * The completion-side allowance the client asked for: the largest of the API's own length fields
 * present (COMPLETION_LENGTH_FIELDS; chat's two may both be given, and an upstream may read either: two
 * different values must not let the reservation take the smaller); undefined when it asked for none.
 * Embeddings have none (0).
 * Throws TypeError when the field is present but not a positive integer up to MAX_REQUESTED_TOKENS.
 */
export function requestedCompletionTokens(kind: EstimateKind, body: Record<string, unknown>): number | undefined {
  if (kind === "embeddings") return 0;
  // the API's own names, and the largest wins: an upstream may honour either (the other API's are refused: request-features.ts)
  let largest: number | undefined;
  for (const f of COMPLETION_LENGTH_FIELDS[kind]) {
    const v = body[f];
    if (v === undefined || v === null) continue;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > MAX_REQUESTED_TOKENS) throw new TypeError(`${f} must be a positive integer up to ${MAX_REQUESTED_TOKENS}`);
    largest = Math.max(largest ?? 0, v);
  }
  return largest;
}

/** The completion-length fields each API reads (OpenAI API reference: chat `max_completion_tokens` and the older `max_tokens`; Responses `max_output_tokens`). */
export const COMPLETION_LENGTH_FIELDS: Readonly<Record<EstimateKind, readonly string[]>> = {
  chat: ["max_completion_tokens", "max_tokens"],
  responses: ["max_output_tokens"],
  embeddings: [],
};

/**
 * Image parts inside `value` (see estimatePromptTokens): typed image parts, and any object carrying an
 * image_url (servers such as vLLM take those as images whatever their type), its keys read as a server
 * that matches names without case would (field-names.ts foldKey: `IMAGE_URL`). Throws TypeError when
 * it nests deeper than MAX_PROMPT_DEPTH.
 */
function countImageParts(value: unknown, depth: number, field: string): number {
  if (value === null || typeof value !== "object") return 0;
  if (depth >= MAX_PROMPT_DEPTH) throw new TypeError(`${field.slice(0, 64)} is nested deeper than ${MAX_PROMPT_DEPTH} levels`);
  let n = 0;
  if (Array.isArray(value)) {
    for (const v of value) n += countImageParts(v, depth + 1, field);
    return n;
  }
  let image = false;
  for (const [key, v] of Object.entries(value)) {
    if (!image && v !== undefined && v !== null) {
      const k = foldKey(key);
      image = k === "image_url" || (k === "type" && typeof v === "string" && IMAGE_TYPES.has(v.trim().toLowerCase()));
    }
    n += countImageParts(v, depth + 1, field);
  }
  return image ? n + 1 : n;
}

/** Content part types that carry an image. */
const IMAGE_TYPES = new Set(["image_url", "input_image"]);

/**
 * How many completions the request asks for (chat `n`, default 1): each may use the full completion
 * allowance, so the reservation multiplies by it. Throws TypeError when `n` is not an integer 1..128.
 */
export function requestedChoices(kind: EstimateKind, body: Record<string, unknown>): number {
  if (kind !== "chat" || body.n === undefined || body.n === null) return 1;
  const n = body.n;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 128) throw new TypeError("n must be an integer between 1 and 128");
  return n;
}
