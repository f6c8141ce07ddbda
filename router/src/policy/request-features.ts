// Provider-side features the router refuses in an agent's request: those whose input the upstream
// expands itself (so the budget reservation, made from the request's own bytes, cannot bound it), and
// those that make the provider fetch or act outside the sandbox (its egress policy does not reach the
// provider's servers; a URL is also a way to carry data out). Sources for the fields:
// https://platform.openai.com/docs/api-reference/chat/create,
// https://platform.openai.com/docs/api-reference/responses/create,
// https://learn.microsoft.com/azure/ai-foundry/openai/references/on-your-data (`data_sources`).

import { COMPLETION_LENGTH_FIELDS } from "../budget/estimate";
import { RouterError } from "../errors/router-error";
import type { InferenceApi } from "./model-selection";

/** One refused feature: where it is in the request body (a field path) and why it is refused. */
export interface FeatureViolation {
  path: string;
  why: string;
}

/** Tool types an agent may declare (compared without case): tools the agent runs itself. Every other type is run by the provider. */
const CLIENT_TOOL_TYPES = new Set(["function", "custom"]);

/**
 * Top-level fields refused while set (not null/undefined/false), with why; matched by their
 * normalised name (normaliseKey), so other spellings that lenient parsers accept (`dataSources`,
 * `Previous_Response_Id`) are refused too. Refused on every API: a field one API does not define
 * is at best ignored upstream.
 */
const REFUSED_FIELDS: [string, string][] = [
  ["data_sources", "the provider retrieves documents into the prompt (uncounted input, and with the provider's own identity)"],
  ["web_search_options", "the provider searches the web (uncounted input, outside the sandbox's egress policy)"],
  ["previous_response_id", "the provider adds a stored conversation to the input (uncounted input)"],
  ["conversation", "the provider adds a stored conversation to the input (uncounted input)"],
  ["prompt", "the provider expands a stored prompt template (uncounted input)"],
  ["background", "a background response is billed after this request ends (its usage cannot be settled)"],
  ["chat_template", "a chat template of the request's own, from which the server renders the prompt (uncounted input, and template code run on the server)"],
];

/** REFUSED_FIELDS by normalised name (normaliseKey). */
const REFUSED_BY_NORMALISED = new Map(REFUSED_FIELDS.map(([field, why]) => [normaliseKey(field), why]));

/**
 * The completion-length fields each API reads (estimate.ts COMPLETION_LENGTH_FIELDS): any other
 * spelling of a length is refused, the other API's too (`max_output_tokens` in a chat request, which a
 * lenient upstream ignores: the request would run uncapped while the reservation counted it as the cap).
 */
const LENGTH_FIELDS: Record<InferenceApi, ReadonlySet<string>> = {
  chat: new Set(COMPLETION_LENGTH_FIELDS.chat),
  responses: new Set(COMPLETION_LENGTH_FIELDS.responses),
  embeddings: new Set(COMPLETION_LENGTH_FIELDS.embeddings),
};

/**
 * Keys that make a Responses input item carry its own payload; an item with an `id` and none of them
 * (`{"type":"reasoning","id":"rs_…","summary":[]}`) is a stored item the provider looks up and expands.
 */
const ITEM_PAYLOAD_KEYS = ["content", "arguments", "output", "encrypted_content", "result"];

/** Normalised names of the fields a lenient upstream may read as a completion length (llama.cpp `n_predict`, Ollama `num_predict`, `max_new_tokens`, …). */
const LENGTH_LIKE = /^(?:max|num|n)(?:new|output|completion|gen|generated)?(?:tokens|len|length|predict)$/;

/** The fields whose content parts are walked, per API (their depth is bounded: estimate.ts). */
const CONTENT_FIELDS: Record<InferenceApi, string[]> = { chat: ["messages"], responses: ["input", "instructions"], embeddings: [] };

/** Keys of a content part that make the provider fetch a URL (vLLM, OpenAI, Mistral shapes), with or without a `type`. */
const URL_KEY = /_url$/i;

/** `tool_choice` types that name a tool the agent runs (or a choice among declared tools). */
const CLIENT_TOOL_CHOICES = new Set(["function", "custom", "allowed_tools"]);

/** Most violations named in one refusal; the rest are counted. */
const MAX_NAMED = 10;

/**
 * Every provider-side feature in a request body that the router refuses (pure; the body is
 * attacker-controlled JSON at most 64 levels deep, as estimatePromptTokens has checked):
 * - top-level fields, in any spelling a lenient parser accepts (normaliseKey): `data_sources` (Azure
 *   On Your Data), `web_search_options`, `previous_response_id`, `conversation`, `prompt` (stored
 *   state the provider expands into input), `background` (billed after the request), `chat_template`
 *   (a template the server renders the prompt from); another spelling of `tools`; a completion length
 *   other than those the API reads (chat: max_completion_tokens, max_tokens; Responses: max_output_tokens);
 * - `tools[i]`, `tool_choice` and its `allowed_tools` of any type but `function` / `custom` (hosted
 *   tools: web and file search, MCP servers, code interpreter, image generation, computer use…);
 * - anywhere in `messages` / `input` / `instructions` (partViolation): files, `file_id`s, item
 *   references, audio answers by id, video, and any `*_url` other than a data: URL, typed or not; a
 *   Responses input item with an `id` and no payload of its own (ITEM_PAYLOAD_KEYS).
 */
export function refusedFeatures(api: InferenceApi, body: Record<string, unknown>): FeatureViolation[] {
  const out: FeatureViolation[] = [];
  for (const [key, v] of Object.entries(body)) {
    const norm = normaliseKey(key);
    const refused = REFUSED_BY_NORMALISED.get(norm);
    if (refused !== undefined && v !== undefined && v !== null && v !== false) out.push({ path: key.slice(0, 64), why: refused });
    else if (norm === "tools" && key !== "tools") out.push({ path: key.slice(0, 64), why: "another spelling of tools (only `tools` is read and checked)" });
    else if (LENGTH_LIKE.test(norm) && !LENGTH_FIELDS[api].has(key)) out.push({ path: key.slice(0, 64), why: lengthWhy(api) });
  }
  if (Array.isArray(body.tools)) {
    body.tools.forEach((t: unknown, i) => {
      const type = normaliseType((t as { type?: unknown } | null)?.type);
      if (type === null || !CLIENT_TOOL_TYPES.has(type)) out.push({ path: `tools[${i}]`, why: hostedTool(type) });
    });
  }
  const choice = body.tool_choice as { type?: unknown; tools?: unknown } | null | undefined;
  if (choice && typeof choice === "object") {
    const type = normaliseType(choice.type);
    if (type === null || !CLIENT_TOOL_CHOICES.has(type)) out.push({ path: "tool_choice", why: hostedTool(type) });
    else if (type === "allowed_tools" && Array.isArray(choice.tools)) {
      choice.tools.forEach((t: unknown, i) => {
        const tt = normaliseType((t as { type?: unknown } | null)?.type);
        if (tt === null || !CLIENT_TOOL_TYPES.has(tt)) out.push({ path: `tool_choice.tools[${i}]`, why: hostedTool(tt) });
      });
    }
  }
  for (const field of CONTENT_FIELDS[api]) {
    const value = body[field];
    if (api !== "responses" || !Array.isArray(value)) {
      walkParts(value, field, out);
      continue;
    }
    // a Responses input item with an id and nothing of its own (`{"id": "msg_…"}`, type optional in the
    // API; `{"type": "reasoning", "id": "rs_…"}`) is a stored item the provider expands: one violation for it
    value.forEach((item: unknown, i) => {
      const it = item as Record<string, unknown> | null;
      if (it && typeof it === "object" && typeof it.id === "string" && !ITEM_PAYLOAD_KEYS.some(k => it[k] !== undefined && it[k] !== null)) {
        out.push({ path: `${field}[${i}]`, why: "an item referenced by id without its own content, which the provider looks up and expands (uncounted input; send the item's content, or a reasoning item's encrypted_content)" });
      } else walkParts(item, `${field}[${i}]`, out);
    });
  }
  return out;
}

/** A key compared without case, `_` or `-` (`dataSources` = `data_sources`). */
function normaliseKey(key: string): string {
  return key.toLowerCase().replace(/[_-]/g, "");
}

/** A `type` value compared without case or surrounding spaces; null when it is not a string. */
function normaliseType(type: unknown): string | null {
  return typeof type === "string" ? type.trim().toLowerCase() : null;
}

/** Why a length field is refused on `api`: which ones it reads instead. */
function lengthWhy(api: InferenceApi): string {
  const own = COMPLETION_LENGTH_FIELDS[api];
  return own.length === 0 ? `a completion length, which the ${api} API does not have` : `a completion length the ${api} API does not read (use ${own.join(" or ")})`;
}

function hostedTool(type: string | null): string {
  return `a ${type !== null ? `"${type.slice(0, 40)}" ` : ""}tool run by the provider (only function and custom tools, which the agent runs itself)`;
}

/**
 * refusedFeatures that throws: RouterError `policy_violation` (403) naming every violation with its
 * field path (the first MAX_NAMED, then how many more). Fails closed: a request is forwarded only
 * when nothing was found.
 */
export function verifyRequestFeatures(api: InferenceApi, body: Record<string, unknown>): void {
  const found = refusedFeatures(api, body);
  if (found.length === 0) return;
  const named = found.slice(0, MAX_NAMED).map(v => `${v.path}: ${v.why}`);
  const more = found.length > MAX_NAMED ? `; and ${found.length - MAX_NAMED} more` : "";
  throw new RouterError("policy_violation", `request uses provider-side features this sandbox does not allow: ${named.join("; ")}${more}`, { param: found[0].path });
}

function walkParts(value: unknown, path: string, out: FeatureViolation[]): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => walkParts(v, `${path}[${i}]`, out));
    return;
  }
  if (!value || typeof value !== "object") return;
  const part = value as Record<string, unknown>;
  const why = partViolation(part);
  if (why !== null) return void out.push({ path, why }); // one violation per part, not one per level inside it
  for (const [key, v] of Object.entries(part)) if (v && typeof v === "object") walkParts(v, `${path}.${key.slice(0, 64)}`, out);
}

/**
 * Why one object inside the content is refused, or null — judged by its keys as well as its `type`
 * (compared without case), since servers such as vLLM take a part without a `type` (or with another
 * one) as media when it has a media key:
 * - a file (`type` file / input_file, or a `file_id` / `file` reference): billed per page, not by bytes;
 * - an item reference (`type` item_reference), or a chat message's `audio` given by `id` (an earlier
 *   audio answer): expanded by the provider;
 * - video (`type` video_url / input_video, or a `video_url` key): billed per frame, not by bytes;
 * - any `*_url` key (image_url, audio_url, file_url, document_url…) naming anything but a data: URL,
 *   as a string or as `{url}`: fetched by the provider.
 */
function partViolation(part: Record<string, unknown>): string | null {
  const type = normaliseType(part.type);
  if (type === "file" || type === "input_file" || (part.file_id !== undefined && part.file_id !== null)) {
    return "a file input or file_id, billed per page as text and images rather than by its bytes, or expanded by the provider (send its text instead)";
  }
  if (type === "item_reference") return "an item referenced by id, which the provider expands (uncounted input)";
  const audio = part.audio as { id?: unknown } | null | undefined;
  if (audio && typeof audio === "object" && audio.id !== undefined && audio.id !== null) return "an audio answer referenced by id, which the provider expands (uncounted input)";
  if (type === "video_url" || type === "input_video" || (part.video_url !== undefined && part.video_url !== null)) return "a video, billed per frame rather than by its bytes";
  for (const [key, v] of Object.entries(part)) {
    if (!URL_KEY.test(key) || v === undefined || v === null) continue;
    const url = typeof v === "object" && !Array.isArray(v) ? (v as { url?: unknown }).url : v;
    if (isRemote(url)) return `${key.slice(0, 40)} names a URL the provider would fetch (send it as a data: URL)`;
  }
  return null;
}

/** Whether a URL field names something the provider would fetch: anything but a data: URL (absent is nothing). */
function isRemote(url: unknown): boolean {
  if (url === undefined || url === null) return false;
  return typeof url !== "string" || !/^data:/i.test(url.trim());
}
