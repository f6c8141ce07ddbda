import { RouterError } from "../errors/router-error";
import { MAX_UPSTREAM_BODY_BYTES } from "./upstream-answer";

/**
 * Responses stream events that carry no generated output: the lifecycle events before the model's
 * first output item. Their `response` echoes the request and has an empty `output`; every other event
 * type may carry generated text, reasoning, refusals or tool arguments.
 * Source: https://platform.openai.com/docs/api-reference/responses-streaming
 */
const OUTPUT_FREE_EVENTS = new Set(["response.queued", "response.created", "response.in_progress"]);

/**
 * Whether a Responses stream event (parsed `data:`, upstream-controlled) carries no generated output:
 * one of the lifecycle events above whose `response.output` is absent or empty.
 */
export function isOutputFreeEvent(data: unknown): boolean {
  if (!data || typeof data !== "object") return false;
  const d = data as { type?: unknown; response?: { output?: unknown } | null };
  if (typeof d.type !== "string" || !OUTPUT_FREE_EVENTS.has(d.type)) return false;
  const output = d.response?.output;
  return output === undefined || output === null || (Array.isArray(output) && output.length === 0);
}

/**
 * Whether a Chat Completions stream chunk (parsed `data:`, upstream-controlled) may be sent before the
 * stream's verdict: every choice that carries output (any delta field but `role` with a value: content,
 * refusal, reasoning, audio, tool or function calls, fields not known here) carries its own non-empty
 * `content_filter_results` too, as Azure's default (synchronous) filter mode annotates each chunk. Under Azure's asynchronous filter mode, content arrives unannotated and the annotations
 * (with `content_filter_offsets`) follow later: such a chunk is not judged yet.
 * Source: https://learn.microsoft.com/azure/ai-foundry/openai/concepts/content-streaming
 */
export function isJudgedOrOutputFreeChatChunk(data: unknown): boolean {
  const choices = (data as { choices?: unknown } | null)?.choices;
  if (!Array.isArray(choices)) return true;
  return choices.every((c: { delta?: unknown; message?: unknown; content_filter_results?: unknown } | null) => {
    const output = carriesOutput(c?.delta) || carriesOutput(c?.message);
    const results = c?.content_filter_results;
    // judged = results for at least one kind: an empty object says nothing about the content
    return !output || (typeof results === "object" && results !== null && Object.keys(results).length > 0);
  });
}

/** Whether a delta carries output: any field but `role` with a value (content as text or parts, reasoning, audio transcript, tool calls…). Fails closed on fields not known here. */
function carriesOutput(delta: unknown): boolean {
  if (!delta || typeof delta !== "object") return false;
  return Object.entries(delta).some(([key, v]) => key !== "role" && !isEmpty(v));
}

function isEmpty(v: unknown): boolean {
  return v === null || v === undefined || v === "" || (Array.isArray(v) && v.length === 0) || (typeof v === "object" && !Array.isArray(v) && Object.keys(v as object).length === 0);
}

/**
 * The events of a stream held back until the content-safety verdict, for streams whose filter
 * annotations come after the output they judge: a Responses stream (annotated in its terminal event),
 * or a chat stream from a deployment in Azure's asynchronous filter mode. `sendable` says which events
 * may go before the verdict (default: a Responses lifecycle event without output). Events stay in
 * upstream order: once one event is held, every later one is held too. At most `maxBytes` (UTF-16
 * code units of event text, a close stand-in for bytes) are held: the same bound as a whole answer.
 */
export class HeldOutput {
  private events: string[] = [];
  private size = 0;

  constructor(
    private readonly sendable: (data: unknown) => boolean = isOutputFreeEvent,
    private readonly maxBytes = MAX_UPSTREAM_BODY_BYTES,
  ) {}

  /** Whether the event with this parsed data must wait: anything once holding started, else what is not sendable. */
  mustHold(data: unknown): boolean {
    return this.events.length > 0 || !this.sendable(data);
  }

  /** Holds one event's text. Throws RouterError `upstream_error` (502) when more than `maxBytes` would be held. */
  hold(event: string): void {
    this.size += event.length;
    if (this.size > this.maxBytes) {
      throw new RouterError("upstream_error", `the upstream stream grew past ${this.maxBytes} bytes before its content-safety verdict`);
    }
    this.events.push(event);
  }

  /** The held events in order; the hold is empty afterwards. */
  release(): string[] {
    const out = this.events;
    this.events = [];
    this.size = 0;
    return out;
  }
}
