import { PassThrough } from "node:stream";
import type { Logger } from "pino";
import type { InferenceAuditEvent as AuditEvent, AuditSink } from "../audit/audit-log";
import { estimatePromptTokens, IMAGE_PART_TOKENS, requestedChoices, requestedCompletionTokens } from "../budget/estimate";
import type { BudgetLedger, Reservation } from "../budget/ledger";
import { WINDOW_KINDS } from "../budget/windows";
import { toErrorReply } from "../errors/openai-error";
import { RouterError } from "../errors/router-error";
import { hasContentSafetyFloor, verifyContentSafety } from "../policy/content-safety";
import { inferenceAction, selectUpstreams, type InferenceApi } from "../policy/model-selection";
import { evaluateAction, verifyActionAllowed } from "../policy/policy-engine";
import { verifyRequestFeatures } from "../policy/request-features";
import { LogThrottle } from "../log-throttle";
import { rateLimitsOf, type RateLimiter } from "../ratelimit/token-bucket";
import { forwardWithFallback, UpstreamOutcomeUnknown, type ForwardDeps, type Forwarded } from "../upstream/forward";
import { HeldOutput, isJudgedOrOutputFreeChatChunk } from "./held-output";
import { budgetScopes, type RuntimeConfig } from "./runtime-config";
import { eventData, eventHasData, isEventStreamType, isPlainSseEvent, plainEvent, SseSplitter, withData } from "./sse";
import { isUsageOnlyChunk, reportedTotalTokens } from "./usage";
import { StreamSecretGuard, type GuardedEvent } from "./stream-secret-guard";
import { readUpstreamBody, redactSecretsInJson, upstreamErrorToRouterError } from "./upstream-answer";

/** Providers whose chat streams may carry output before its filter annotations (Azure's asynchronous filter mode). */
const ASYNC_FILTER_PROVIDERS = new Set(["azure-openai", "foundry"]);

/** Longest model name accepted (characters); a longer one is a 400 and is audited cut to this length. */
export const MAX_MODEL_CHARS = 256;

/** Completion tokens reserved (and sent upstream as the cap) when the agent names no limit. */
export const DEFAULT_COMPLETION_TOKENS = 4096;

/** What the service needs, all passed in (STYLE §2): state objects, I/O seams, clock, log. */
export interface InferenceDeps {
  ledger: BudgetLedger;
  limiter: RateLimiter;
  forward: ForwardDeps;
  audit: AuditSink;
  now: () => number;
  log: Pick<Logger, "debug" | "info" | "warn" | "error">;
}

/** A reply: a whole JSON body (upstream text passed through), or an SSE stream. */
export type InferenceResult =
  | { kind: "json"; status: number; body: string }
  | { kind: "stream"; status: number; stream: PassThrough; settled: Promise<void> };

/** What InferenceService.admit found in a request that passed the checks before the budget. */
interface Admitted {
  body: Record<string, unknown>;
  stream: boolean;
  candidates: ReturnType<typeof selectUpstreams>;
  scopes: ReturnType<typeof budgetScopes>;
  /** Prompt estimate (tokens). */
  prompt: number;
  /** Completion tokens per choice the agent asked for (max_completion_tokens / max_tokens / max_output_tokens), if any. */
  requested: number | undefined;
  /** Choices asked for (`n`). */
  choices: number;
}

/**
 * The inference path of DESIGN §6, in its order: rate limit → policy → budget reservation (prompt
 * estimate + max tokens) → per-request cap → forward (with fallback) → settle to actual `usage` →
 * content-safety floor → audit. `body` is the agent's parsed JSON (attacker-controlled); `agent` keys
 * the per-agent rate limit. Throws RouterError for every refusal; the caller maps it (openai-error.ts).
 * A stream is settled when the upstream finishes, even if the agent has gone away.
 */
export class InferenceService {
  private readonly policyCalls = new Map<string, number[]>();
  /** Calls not settled yet (see handle, drain), and who waits for none to be left. */
  private open = 0;
  private whenNoneOpen: (() => void) | null = null;
  private readonly closeOne = (): void => {
    if (--this.open === 0) this.whenNoneOpen?.();
  };
  /** Refusal lines of the log, bounded under a flood (the audit log has every decision). */
  private readonly refusalLines: LogThrottle;

  constructor(
    private readonly config: () => RuntimeConfig,
    private readonly deps: InferenceDeps,
  ) {
    this.refusalLines = new LogThrottle((counts, total) => deps.log.info({ suppressed: total, byCode: counts }, "inference refusal lines left out (every decision is in the audit log)"));
  }

  /**
   * Handles one call (see the class doc). The call counts as open (see `drain`) until it is settled:
   * a whole answer when it is returned or refused, a stream when its upstream has ended.
   */
  async handle(api: InferenceApi, rawBody: unknown, agent: string): Promise<InferenceResult> {
    this.open++;
    let result: InferenceResult | undefined;
    try {
      result = await this.handleCall(api, rawBody, agent);
      return result;
    } finally {
      if (result?.kind === "stream") void result.settled.then(this.closeOne, this.closeOne);
      else this.closeOne();
    }
  }

  /**
   * Resolves once every open call has settled (its budget and audit record written), or after
   * `timeoutMs`, whichever is first; for shutdown, after the upstream client has been closed (a call it
   * aborted ends with an error, is charged its reservation and audited).
   */
  async drain(timeoutMs: number): Promise<void> {
    if (this.open === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>(resolve => {
      this.whenNoneOpen = resolve;
      timer = setTimeout(resolve, timeoutMs);
    });
    clearTimeout(timer);
  }

  private async handleCall(api: InferenceApi, rawBody: unknown, agent: string): Promise<InferenceResult> {
    const config = this.config();
    const { profile } = config;
    const now = this.deps.now();
    // every refusal is audited, those before the budget too (a malformed request, the rate limit, the policy)
    const audit: AuditEvent = {
      kind: "inference", sandbox: profile.sandbox, tenant: profile.tenant, api, model: null, upstream: null,
      decision: "refused", code: null, reservedTokens: 0, usedTokens: 0, status: 0,
    };
    let admitted: Admitted;
    try {
      // a call that cannot be audited is not made (fail closed); recording this refusal retries the write
      if (this.deps.audit.healthy?.() === false) throw new RouterError("upstream_unavailable", "the audit log cannot be written; no call is forwarded until it can", { retryAfterSeconds: 5 });
      admitted = this.admit(config, api, rawBody, agent, now, audit);
    } catch (err) {
      this.refused(audit, err);
      throw err;
    }
    const { body, stream, candidates, scopes, prompt, requested, choices } = admitted;
    const perRequest = profile.inferencePolicy.tokenBudget?.perRequestTokens;
    // completion tokens of all choices: each of `n` choices may use the whole per-choice allowance
    const perChoice = requested ?? Math.max(1, Math.floor(this.defaultCompletion(scopes, prompt, perRequest, now) / choices));
    const completion = perChoice * choices;
    audit.reservedTokens = prompt + completion;
    let reservation: Reservation;
    try {
      reservation = this.deps.ledger.reserve(scopes, prompt + completion, now);
    } catch (err) {
      this.refused(audit, err);
      throw err;
    }
    if (perRequest !== undefined && prompt + completion > perRequest) {
      this.deps.ledger.settle(reservation, 0);
      const err = new RouterError("per_request_tokens_exceeded", `request needs up to ${prompt + completion} tokens (prompt estimate ${prompt} + max ${completion}); the per-request limit is ${perRequest}`);
      this.refused(audit, err);
      throw err;
    }

    let forwarded: Forwarded;
    try {
      // the first candidate was judged by the policy in admit; a fallback is judged when it is about to be tried
      const permits = (u: { name: string }): string | null => {
        if (u === candidates[0]) return null;
        const action = inferenceAction(api, u.name);
        const d = evaluateAction(config.toolPolicy, action, this.deps.now(), this.policyCalls);
        return d.allowed ? null : `action ${action} ${d.reason}`;
      };
      forwarded = await forwardWithFallback(candidates, api, body, perChoice, this.deps.forward, permits);
    } catch (err) {
      // nothing was answered: nothing generated, unless the request may have reached an upstream (charged in full, fail closed)
      const charged = err instanceof UpstreamOutcomeUnknown ? reservation.tokens : 0;
      this.deps.ledger.settle(reservation, charged);
      audit.usedTokens = charged;
      this.refused(audit, err);
      throw err;
    }
    audit.upstream = forwarded.upstream.name;
    const { response } = forwarded;
    // a stream asked for but not given (a JSON body, or anything else) is read and judged whole
    if (response.status < 200 || response.status >= 300 || !stream || !isEventStreamType(response.contentType)) {
      return this.wholeAnswer(forwarded, reservation, audit);
    }
    return this.streamAnswer(forwarded, reservation, audit, api, body);
  }

  /**
   * The checks before the budget, in DESIGN §6's order: the body's shape, the rate limit, the model
   * and the policy; then the prompt estimate and the completion the agent asked for. Sets
   * `audit.model` as soon as it is known. Throws the RouterError of the first refusal.
   */
  private admit(config: RuntimeConfig, api: InferenceApi, rawBody: unknown, agent: string, now: number, audit: AuditEvent): Admitted {
    const { profile, toolPolicy } = config;
    const named = (rawBody as { model?: unknown } | null)?.model;
    // also when the rest of the body is refused; bounded, so that no agent string bloats the audit log
    if (typeof named === "string") audit.model = named.length <= MAX_MODEL_CHARS ? named : `${named.slice(0, MAX_MODEL_CHARS)}…`;
    const body = requestBody(api, rawBody);
    const model = typeof body.model === "string" ? body.model : undefined;
    this.deps.limiter.configure(rateLimitsOf(profile));
    this.deps.limiter.take(agent, now);
    const candidates = selectUpstreams(profile, api, model);
    verifyActionAllowed(toolPolicy, inferenceAction(api, candidates[0].name), now, this.policyCalls);
    let admitted: Admitted;
    try {
      // the reservation must cover whichever candidate serves the request: the largest image allowance among them
      let imageTokens = 0;
      for (const u of candidates) imageTokens = Math.max(imageTokens, u.imageTokens ?? IMAGE_PART_TOKENS);
      const prompt = estimatePromptTokens(api, body, imageTokens);
      admitted = { body, stream: body.stream === true, candidates, scopes: budgetScopes(profile), prompt, requested: requestedCompletionTokens(api, body), choices: requestedChoices(api, body) };
    } catch (err) {
      throw new RouterError("invalid_request", (err as Error).message, { cause: err });
    }
    // input the provider would expand or fetch itself cannot be bounded by the reservation (nor kept inside the egress policy)
    verifyRequestFeatures(api, body);
    return admitted;
  }

  /** Completion allowance when the agent named none: the default, clamped to what the budgets still allow. */
  private defaultCompletion(scopes: ReturnType<typeof budgetScopes>, prompt: number, perRequest: number | undefined, now: number): number {
    let room = perRequest !== undefined ? perRequest - prompt : DEFAULT_COMPLETION_TOKENS;
    for (const scope of scopes) {
      const left = this.deps.ledger.remaining(scope, now);
      for (const kind of WINDOW_KINDS) if (left[kind] !== undefined) room = Math.min(room, (left[kind] as number) - prompt);
    }
    return Math.max(1, Math.min(DEFAULT_COMPLETION_TOKENS, room));
  }

  private async wholeAnswer(f: Forwarded, reservation: Reservation, audit: AuditEvent): Promise<InferenceResult> {
    const { response } = f;
    let text: string;
    try {
      text = await readUpstreamBody(response);
    } catch (err) {
      this.deps.ledger.settle(reservation, reservation.tokens); // may have been generated: charge the reservation
      this.refused(audit, err);
      throw new RouterError("upstream_error", `reading the upstream answer failed: ${(err as Error).message}`, { cause: err });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const ok = response.status >= 200 && response.status < 300;
    const used = reportedTotalTokens(json) ?? (ok ? reservation.tokens : 0);
    this.settleToUsage(reservation, used, audit);
    audit.usedTokens = used;
    if (!ok) {
      const err = upstreamErrorToRouterError(response.status, json, f.upstream.name, f.secrets);
      this.refused(audit, err);
      throw err;
    }
    if (json === undefined) {
      const err = new RouterError("upstream_error", `upstream ${f.upstream.name} answered with a body that is not JSON`);
      this.refused(audit, err);
      throw err;
    }
    try {
      verifyContentSafety(this.config().profile.inferencePolicy.contentSafety, json);
    } catch (err) {
      this.refused(audit, err);
      throw err;
    }
    // The budget is settled above; the audit record and its log line follow right after the reply is
    // handed over (the record is group-committed AUDIT_FLUSH_MS later in any case, see audit-log.ts), so
    // hashing it and writing the log line are not on the agent's critical path.
    const status = response.status;
    setImmediate(() => this.allowed(audit, status));
    // credentials are never returned, even echoed; and what was judged is what goes: a chat or Responses
    // answer is written anew from its parse (a duplicate key's first value, which the parse dropped and
    // a first-key-wins client would read, does not pass). Embeddings (no floor; megabytes) go as they came.
    const body = audit.api === "embeddings" ? text : JSON.stringify(json);
    return { kind: "json", status, body: redactSecretsInJson(body, f.secrets) };
  }

  /**
   * Passes the upstream SSE stream through event by event, reading usage and filter results on the way.
   * Resolves once the first event is ready to send (so a prompt refused by the content-safety floor in
   * the first chunk is still a plain 403), and keeps reading the upstream to its end even when the
   * agent disconnects, so the budget settles to the real usage. While the agent is connected the
   * upstream is read no faster than the agent reads (backpressure: an unread stream is not buffered
   * whole in the router); an agent that stops reading holds the upstream until its body timeout, and
   * the reservation is then charged in full. A Responses stream under a
   * content-safety floor sends only its output-free lifecycle events at once and holds the rest until
   * the upstream has finished: Azure annotates such a stream in its terminal `response.completed`,
   * after the deltas it judges, so output above the floor never reaches the agent (chat chunks carry
   * their own annotations and pass one by one). A refusal found while everything is still held is a
   * plain 403; after the lifecycle events went out, the stream ends with an error event instead of the
   * held output.
   */
  private streamAnswer(f: Forwarded, reservation: Reservation, audit: AuditEvent, api: InferenceApi, body: Record<string, unknown>): Promise<InferenceResult> {
    const out = new PassThrough();
    const clientWantsUsage = (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
    const contentSafety = this.config().profile.inferencePolicy.contentSafety;
    const floor = hasContentSafetyFloor(contentSafety);
    const held = !floor ? undefined : api === "responses" ? new HeldOutput() : api === "chat" && ASYNC_FILTER_PROVIDERS.has(f.upstream.provider) ? new HeldOutput(isJudgedOrOutputFreeChatChunk) : undefined;
    let started = false;
    return new Promise<InferenceResult>((resolve, reject) => {
      const begin = () => {
        if (started) return;
        started = true;
        resolve({ kind: "stream", status: f.response.status, stream: out, settled });
      };
      const settled = (async () => {
        const splitter = new SseSplitter();
        // credentials are never returned, even echoed, even split across events
        const secrets = new StreamSecretGuard(f.secrets, withData, plainEvent, api === "chat" || api === "responses" ? api : "other");
        let used: number | undefined;
        let refusal: unknown;
        const send = (text: string) => {
          begin();
          if (!out.destroyed && !out.writableEnded) out.write(text);
        };
        /** Reads one event's usage, judges it, and sends or holds it; throws the refusal. */
        const pass = (event: string) => {
          const data = eventData(event);
          // what cannot be read cannot be judged: under a floor it is refused, never passed on unjudged
          if (floor) {
            if (data === undefined && eventHasData(event)) throw new RouterError("upstream_error", "the upstream sent a stream event whose data is not JSON; under the content-safety floor it cannot be judged");
            if (data !== undefined && data !== "[DONE]" && (data === null || typeof data !== "object" || Array.isArray(data))) throw new RouterError("upstream_error", "the upstream sent a stream event whose data is not a JSON object; under the content-safety floor it cannot be judged");
            if (!isPlainSseEvent(event)) throw new RouterError("upstream_error", "the upstream sent stream text that is not an SSE event; under the content-safety floor it cannot be judged");
          }
          const reported = reportedTotalTokens(data);
          if (reported !== undefined) used = reported;
          verifyContentSafety(contentSafety, data);
          if (api === "chat" && !clientWantsUsage && isUsageOnlyChunk(data)) return;
          forward(secrets.push(event, data));
        };
        /** Sends or holds (content-safety verdict) events the credential guard has passed on. */
        const forward = (events: GuardedEvent[]) => {
          for (const g of events) {
            if (held?.mustHold(g.data)) held.hold(g.event);
            else send(g.event);
          }
        };
        try {
          outer: for await (const chunk of f.response.body) {
            for (const event of splitter.push(chunk)) {
              try {
                pass(event);
              } catch (err) {
                refusal = err;
                break outer; // leaving the loop aborts the upstream: stop paying for refused output
              }
            }
            // backpressure: an agent that does not read holds the upstream, not the router's memory
            // (once it has gone, fastify destroys `out` and the rest is read and dropped, to settle)
            if (out.writableNeedDrain && !out.destroyed) await drainedOrClosed(out);
          }
          const rest = splitter.flush();
          if (rest.trim() !== "" && refusal === undefined) pass(rest);
        } catch (err) {
          refusal ??= err instanceof RouterError ? err : new RouterError("upstream_error", `upstream stream failed: ${(err as Error).message}`, { cause: err });
        }
        const charged = used ?? reservation.tokens; // no usage reported: charge what was reserved
        this.settleToUsage(reservation, charged, audit);
        audit.usedTokens = charged;
        if (refusal !== undefined) {
          this.refused(audit, refusal); // held output is dropped: it was never verified
          if (!started) {
            started = true;
            out.destroy();
            reject(refusal);
            return;
          }
          send(`data: ${JSON.stringify(toErrorReply(refusal).body)}\n\n`);
        } else {
          forward(secrets.flush());
          for (const event of held?.release() ?? []) send(event);
          this.allowed(audit, f.response.status);
        }
        begin();
        out.end();
      })();
      settled.catch(err => {
        this.deps.log.error({ err }, "stream settlement failed");
        if (!started) reject(err);
        else out.destroy(err as Error);
      });
    });
  }

  /**
   * Settles a reservation to the upstream's reported usage. Usage above the reservation is charged in
   * full (spend is the truth) and logged as a warning: the prompt estimate under-counted something the
   * upstream billed (an image above IMAGE_PART_TOKENS, an upstream that ignored the completion cap), so
   * a budget may have been passed by that much.
   */
  private settleToUsage(reservation: Reservation, used: number, audit: AuditEvent): void {
    this.deps.ledger.settle(reservation, used);
    if (used > reservation.tokens) {
      this.deps.log.warn({ api: audit.api, model: audit.model, upstream: audit.upstream, reservedTokens: reservation.tokens, usedTokens: used }, "usage above the reservation: the budget may have been passed by the difference");
    }
  }

  private allowed(audit: AuditEvent, status: number): void {
    this.writeAudit({ ...audit, decision: "allowed", status });
  }

  /**
   * Audits a refusal the HTTP layer made before the request reached `handle` (a body that is not JSON,
   * 413, 415, no such route): `api` is the route's API, or "other" when no route matched. The event has
   * no model, upstream or tokens; its code and status are the reply's (toErrorReply; `status` when the
   * reply's differs, e.g. 431). Never throws: a failed audit write is logged, as in `handle`.
   */
  auditRefusal(api: string, err: unknown, status?: number): void {
    const { profile } = this.config();
    this.refused({ kind: "inference", sandbox: profile.sandbox, tenant: profile.tenant, api, model: null, upstream: null, decision: "refused", code: null, reservedTokens: 0, usedTokens: 0, status: 0 }, err, status);
  }

  private refused(audit: AuditEvent, err: unknown, status?: number): void {
    const reply = toErrorReply(err);
    this.writeAudit({ ...audit, decision: "refused", code: reply.body.error.code, status: status ?? reply.status });
  }

  private writeAudit(event: AuditEvent): void {
    try {
      this.deps.audit.record(event);
    } catch (err) {
      this.deps.log.error({ err }, "audit write failed");
    }
    // the audit log has every decision; the log shows refusals at info, allowed calls at debug (as the egress proxy does)
    if (event.decision === "allowed") this.deps.log.debug({ audit: event }, "inference allowed");
    else if (this.refusalLines.admit(event.code ?? "refused")) this.deps.log.info({ audit: event }, "inference refused");
  }
}

/** The request body as an object with the fields each API needs; throws RouterError `invalid_request` (400). */
function requestBody(api: InferenceApi, raw: unknown): Record<string, unknown> {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new RouterError("invalid_request", "request body must be a JSON object");
  const body = raw as Record<string, unknown>;
  if (body.model !== undefined && typeof body.model !== "string") throw new RouterError("invalid_request", "model must be a string", { param: "model" });
  if (typeof body.model === "string" && body.model.length > MAX_MODEL_CHARS) throw new RouterError("invalid_request", `model is longer than ${MAX_MODEL_CHARS} characters`, { param: "model" });
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== "boolean") throw new RouterError("invalid_request", "stream must be a boolean", { param: "stream" });
  if (api === "chat" && !Array.isArray(body.messages)) throw new RouterError("invalid_request", "messages must be an array", { param: "messages" });
  if ((api === "responses" || api === "embeddings") && body.input === undefined) throw new RouterError("invalid_request", "input is required", { param: "input" });
  if (api === "embeddings" && body.stream === true) throw new RouterError("invalid_request", "embeddings cannot stream", { param: "stream" });
  return body;
}

/** Resolves when `stream` can take more ('drain') or has been destroyed ('close'), whichever comes first. */
function drainedOrClosed(stream: PassThrough): Promise<void> {
  return new Promise(resolve => {
    const done = (): void => {
      stream.off("drain", done).off("close", done);
      resolve();
    };
    stream.on("drain", done).on("close", done);
  });
}

