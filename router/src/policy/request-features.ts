// Provider-side features the router refuses in an agent's request: those whose input the upstream
// expands itself (so the budget reservation, made from the request's own bytes, cannot bound it), and
// those that make the provider fetch or act outside the sandbox (its egress policy does not reach the
// provider's servers; a URL is also a way to carry data out). Sources for the fields:
// https://platform.openai.com/docs/api-reference/chat/create,
// https://platform.openai.com/docs/api-reference/responses/create,
// https://learn.microsoft.com/azure/ai-foundry/openai/references/on-your-data (`data_sources`).

import { COMPLETION_LENGTH_FIELDS } from "../budget/estimate";
import { RouterError } from "../errors/router-error";
import { foldKey, PLAIN_KEY } from "./field-names";
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
  ["mm_processor_kwargs", "image processing settings of the request's own (vLLM: max_pixels…), which can make an image cost more than the allowance reserved for it (uncounted input)"],
];

/** REFUSED_FIELDS by normalised name (normaliseKey). */
const REFUSED_BY_NORMALISED = new Map(REFUSED_FIELDS.map(([field, why]) => [normaliseKey(field), why]));

/**
 * Keys that make a Responses input item carry its own payload; an item with an `id` and none of them
 * (`{"type":"reasoning","id":"rs_…","summary":[]}`) is a stored item the provider looks up and expands.
 */
const ITEM_PAYLOAD_KEYS = ["content", "arguments", "output", "encrypted_content", "result"];

/** Normalised names of the fields a lenient upstream may read as a completion length (llama.cpp `n_predict`, Ollama `num_predict`, `max_new_tokens`, …). */
const LENGTH_LIKE = /^(?:max|num|n)(?:new|output|completion|gen|generated)?(?:tokens|len|length|predict)$/;

/**
 * The fields whose content parts are walked, per API (their depth is bounded: estimate.ts). Embeddings
 * too: servers that embed a conversation (vLLM's chat form, `messages` in place of `input`) or images
 * fetch what the parts point to.
 */
const CONTENT_FIELDS: Record<InferenceApi, string[]> = { chat: ["messages"], responses: ["input", "instructions"], embeddings: ["input", "messages"] };

/** Keys of a content part that make the provider fetch a URL (vLLM, OpenAI, Mistral shapes), with or without a `type`. */
const URL_KEY = /_url$/i;

/** `tool_choice` given as a string: a mode, not a tool (any other string names a hosted tool). */
const TOOL_CHOICE_MODES = new Set(["none", "auto", "required"]);

/** Normalised names of fields a server may read as a number of completions (OpenAI `n` and `best_of`, llama.cpp `n_cmpl`, TGI `num_return_sequences`…): only chat's `n` is counted. */
const COUNT_LIKE = /^(?:n|ncmpl|nchoices|ncompletions?|numcompletions?|numchoices|bestof|numreturnsequences|nsamples|numsamples|numgenerations)$/;

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
 *   a number of completions other than chat's `n` (`n_cmpl`, `best_of`…); `chat_template` inside
 *   `chat_template_kwargs`; any other field name that is not lower-case ASCII (servers matching names
 *   without case, or with Go's Unicode folding, would read `MODEL` or `max_tokenſ` as another field);
 *   `tools` that is not an array, a `tool_choice` string other than none/auto/required;
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
    const path = key.slice(0, 64);
    const refused = REFUSED_BY_NORMALISED.get(norm);
    if (refused !== undefined && v !== undefined && v !== null && v !== false) out.push({ path, why: refused });
    else if (norm === "tools" && key !== "tools") out.push({ path, why: "another spelling of tools (only `tools` is read and checked)" });
    else if (norm === "toolchoice" && key !== "tool_choice") out.push({ path, why: "another spelling of tool_choice (only `tool_choice` is read and checked)" });
    // only the API's own length fields (estimate.ts COMPLETION_LENGTH_FIELDS): the other API's a lenient server would ignore, running uncapped
    else if (LENGTH_LIKE.test(norm) && !COMPLETION_LENGTH_FIELDS[api].includes(key)) out.push({ path, why: lengthWhy(api) });
    else if (COUNT_LIKE.test(norm) && !(api === "chat" && key === "n")) out.push({ path, why: `a number of completions the reservation does not count${api === "chat" ? " (it counts `n`)" : ""}` });
    else if (!PLAIN_KEY.test(key)) out.push({ path, why: "a field name that is not lower-case ASCII: a server that matches names without case, or with Unicode folding, would read it as another field" });
    else if (norm === "chattemplatekwargs" && v && typeof v === "object") {
      // older vLLM let these arguments replace the template itself (GHSA-6fvq-23cw-5628)
      for (const k of Object.keys(v)) if (normaliseKey(k) === "chattemplate") out.push({ path: `${path}.${k.slice(0, 64)}`, why: REFUSED_BY_NORMALISED.get("chattemplate") as string });
    }
  }
  if (body.tools !== undefined && body.tools !== null && !Array.isArray(body.tools)) out.push({ path: "tools", why: "tools must be an array (only its function and custom tools are allowed)" });
  if (typeof body.tool_choice === "string" && !TOOL_CHOICE_MODES.has(body.tool_choice)) out.push({ path: "tool_choice", why: hostedTool(body.tool_choice.trim().toLowerCase()) });
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
      if (it && typeof it === "object" && typeof it.id === "string" && !ITEM_PAYLOAD_KEYS.some(k => hasPayload(it[k]))) {
        out.push({ path: `${field}[${i}]`, why: "an item referenced by id without its own content, which the provider looks up and expands (uncounted input; send the item's content, or a reasoning item's encrypted_content)" });
      } else walkParts(item, `${field}[${i}]`, out);
    });
  }
  return out;
}

/** A key compared without case (foldKey), `_` or `-` (`dataSources` = `data_sources`, `max_tokenſ` = `max_tokens`). */
function normaliseKey(key: string): string {
  return foldKey(key).replace(/[_-]/g, "");
}

/** A `type` value compared without case or surrounding spaces; null when it is not a string. */
function normaliseType(type: unknown): string | null {
  return typeof type === "string" ? type.trim().toLowerCase() : null;
}

/** Whether an item's payload field carries something: not absent, null, "", [] or {}. */
function hasPayload(v: unknown): boolean {
  if (v === undefined || v === null || v === "") return false;
  if (Array.isArray(v)) return v.length > 0;
  return typeof v !== "object" || Object.keys(v).length > 0;
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
  // keys as a server that matches them without case or with Unicode folding reads them (Go's encoding/json: `FILE_ID`, `image_urſ`)
  for (const [key, v] of Object.entries(part)) {
    if (v === undefined || v === null) continue;
    const k = foldKey(key);
    if (k === "type") {
      const type = normaliseType(v);
      if (type === "file" || type === "input_file") return FILE_WHY;
      if (type === "item_reference") return "an item referenced by id, which the provider expands (uncounted input)";
      if (type === "video_url" || type === "input_video") return VIDEO_WHY;
    } else if (k === "file_id") return FILE_WHY;
    else if (k === "video_url") return VIDEO_WHY;
    else if (k === "audio" && typeof v === "object" && valuesOf(v, "id").length > 0) return "an audio answer referenced by id, which the provider expands (uncounted input)";
    if (URL_KEY.test(k)) {
      const urls = typeof v === "object" && !Array.isArray(v) ? valuesOf(v, "url") : [v];
      if (urls.some(isRemote)) return `${key.slice(0, 40)} names a URL the provider would fetch (send it as a data: URL)`;
    }
  }
  return null;
}

const FILE_WHY = "a file input or file_id, billed per page as text and images rather than by its bytes, or expanded by the provider (send its text instead)";
const VIDEO_WHY = "a video, billed per frame rather than by its bytes";

/** The non-null values of `o` under every key that folds to `name` (foldKey): a server may read any of them. */
function valuesOf(o: object, name: string): unknown[] {
  return Object.entries(o).filter(([k, v]) => v !== undefined && v !== null && foldKey(k) === name).map(([, v]) => v);
}

/** Whether a URL field names something the provider would fetch: anything but a data: URL (absent is nothing). */
function isRemote(url: unknown): boolean {
  if (url === undefined || url === null) return false;
  return typeof url !== "string" || !/^data:/i.test(url.trim());
}
