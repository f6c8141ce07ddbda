// Provider-side features the router refuses in an agent's request: those whose input the upstream
// expands itself (so the budget reservation, made from the request's own bytes, cannot bound it), and
// those that make the provider fetch or act outside the sandbox (its egress policy does not reach the
// provider's servers; a URL is also a way to carry data out). Sources for the fields:
// https://platform.openai.com/docs/api-reference/chat/create,
// https://platform.openai.com/docs/api-reference/responses/create,
// https://learn.microsoft.com/azure/ai-foundry/openai/references/on-your-data (`data_sources`).

import { RouterError } from "../errors/router-error";
import type { InferenceApi } from "./model-selection";

/** One refused feature: where it is in the request body (a field path) and why it is refused. */
export interface FeatureViolation {
  path: string;
  why: string;
}

/** Tool types an agent may declare: tools the agent runs itself. Every other type is run by the provider. */
const CLIENT_TOOL_TYPES = new Set(["function", "custom"]);

/** Top-level fields refused per API while set (not null/undefined/false), with why. */
const REFUSED_FIELDS: Record<InferenceApi, [string, string][]> = {
  chat: [
    ["data_sources", "the provider retrieves documents into the prompt (uncounted input, and with the provider's own identity)"],
    ["web_search_options", "the provider searches the web (uncounted input, outside the sandbox's egress policy)"],
  ],
  responses: [
    ["previous_response_id", "the provider adds a stored conversation to the input (uncounted input)"],
    ["conversation", "the provider adds a stored conversation to the input (uncounted input)"],
    ["prompt", "the provider expands a stored prompt template (uncounted input)"],
    ["background", "a background response is billed after this request ends (its usage cannot be settled)"],
  ],
  embeddings: [],
};

/** The fields whose content parts are walked, per API (the prompt fields; their depth is bounded by estimatePromptTokens). */
const CONTENT_FIELDS: Record<InferenceApi, string[]> = { chat: ["messages"], responses: ["input"], embeddings: [] };

/** Most violations named in one refusal; the rest are counted. */
const MAX_NAMED = 10;

/**
 * Every provider-side feature in a request body that the router refuses, in body order (pure; the
 * body is attacker-controlled JSON whose prompt fields are at most 64 levels deep, as
 * estimatePromptTokens has checked):
 * - top-level fields: chat `data_sources` (Azure On Your Data), `web_search_options`; Responses
 *   `previous_response_id`, `conversation`, `prompt` (stored state the provider expands into input),
 *   `background` (billed after the request);
 * - `tools[i]` of any type but `function` / `custom` (hosted tools: web and file search, MCP servers,
 *   code interpreter, image generation, computer use…);
 * - content parts anywhere in `messages` / `input`: files (`file`, `input_file`: billed per page as
 *   text and images, not by their bytes), items referenced by id (`item_reference`, a `file_id`), and
 *   images given by a URL that is not a `data:` URL (fetched by the provider).
 */
export function refusedFeatures(api: InferenceApi, body: Record<string, unknown>): FeatureViolation[] {
  const out: FeatureViolation[] = [];
  for (const [field, why] of REFUSED_FIELDS[api]) {
    const v = body[field];
    if (v !== undefined && v !== null && v !== false) out.push({ path: field, why });
  }
  if (Array.isArray(body.tools)) {
    body.tools.forEach((t: unknown, i) => {
      const type = (t as { type?: unknown } | null)?.type;
      if (typeof type !== "string" || !CLIENT_TOOL_TYPES.has(type)) {
        out.push({ path: `tools[${i}]`, why: `a ${typeof type === "string" ? `"${type.slice(0, 40)}" ` : ""}tool run by the provider (only function and custom tools, which the agent runs itself)` });
      }
    });
  }
  for (const field of CONTENT_FIELDS[api]) walkParts(body[field], field, out);
  return out;
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
  if (why !== null) out.push({ path, why });
  for (const [key, v] of Object.entries(part)) if (v && typeof v === "object") walkParts(v, `${path}.${key}`, out);
}

/** Why one content part (an object with a `type`) is refused, or null. */
function partViolation(part: Record<string, unknown>): string | null {
  switch (part.type) {
    case "file":
    case "input_file":
      return "a file input, billed per page as text and images rather than by its bytes (send its text instead)";
    case "item_reference":
      return "an item referenced by id, which the provider expands (uncounted input)";
    case "image_url": {
      const url = (part.image_url as { url?: unknown } | null | undefined)?.url ?? part.image_url;
      return isRemote(url) ? "an image the provider would fetch from a URL (send it as a data: URL)" : null;
    }
    case "input_image":
      if (part.file_id !== undefined && part.file_id !== null) return "an image referenced by file_id, which the provider expands (send it as a data: URL)";
      return isRemote(part.image_url) ? "an image the provider would fetch from a URL (send it as a data: URL)" : null;
    default:
      return null;
  }
}

/** Whether an image URL field names something the provider would fetch: anything but a data: URL (or no URL). */
function isRemote(url: unknown): boolean {
  if (url === undefined || url === null) return false;
  return typeof url !== "string" || !/^data:/i.test(url.trimStart());
}
