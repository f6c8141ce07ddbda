import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { timingSafeEqual } from "node:crypto";
import type { Logger } from "pino";
import { Registry } from "prom-client";
import type { AuditSink } from "./audit/audit-log";
import type { BudgetLedger } from "./budget/ledger";
import { WINDOW_KINDS } from "./budget/windows";
import type { ConfigReadiness } from "./config/config-dir";
import { asRouterError, toErrorReply } from "./errors/openai-error";
import { RouterError } from "./errors/router-error";
import { InferenceService } from "./inference/inference-service";
import { budgetScopes, type RuntimeConfig } from "./inference/runtime-config";
import { createMetrics } from "./metrics";
import { allowedModels, type InferenceApi } from "./policy/model-selection";
import { rateLimitsOf, RateLimiter } from "./ratelimit/token-bucket";
import { CircuitBreakers } from "./upstream/circuit-breaker";
import type { UpstreamAuth } from "./upstream/forward";
import type { UpstreamFetch } from "./upstream/upstream-fetch";

/** Longest (ms) a request on the ops port may take to arrive, and a connection there may stay idle. */
export const OPS_REQUEST_TIMEOUT_MS = 10_000;

/** Largest agent request body accepted (bytes); larger is 413. */
export const MAX_REQUEST_BODY_BYTES = 8 * 1024 * 1024;

/** Headers and fields the logger never prints (STYLE §8: redaction by configuration). */
export const REDACT_PATHS = [
  "req.headers.authorization",
  'req.headers["api-key"]',
  'req.headers["x-api-key"]',
  'req.headers["ocp-apim-subscription-key"]',
  "headers.authorization",
  'headers["api-key"]',
  "*.authorization",
  '*["api-key"]',
  "token",
  "*.token",
];

/** Where the configuration comes from (ConfigDirectory in production; a fixed object in tests). */
export interface ConfigSource {
  config(): RuntimeConfig;
  readiness(): ConfigReadiness;
  opsBearerToken(): string | null;
}

/** Everything the router needs, passed in (STYLE §2); server.ts builds the production set. */
export interface RouterDeps {
  config: ConfigSource;
  ledger: BudgetLedger;
  audit: AuditSink;
  fetch: UpstreamFetch;
  auth: UpstreamAuth;
  now: () => number;
  logger: Logger;
  /** More metric registries served on /metrics (the egress proxy's). */
  extraRegistries?: () => Registry[];
}

/** The agent-facing API app and the ops app (separate listeners, DESIGN §2). */
export interface RouterApps {
  api: FastifyInstance;
  ops: FastifyInstance;
  service: InferenceService;
}

const ROUTES: [string, InferenceApi][] = [
  ["/v1/chat/completions", "chat"],
  ["/v1/responses", "responses"],
  ["/v1/embeddings", "embeddings"],
];
const ROUTE_KIND = new Map<string, string>(ROUTES);

/**
 * Builds both fastify apps from explicit deps (no env, no listening: see server.ts). Routes are thin:
 * parse → InferenceService → reply; every error leaves through toErrorReply (openai-error.ts).
 * Incoming credentials (`authorization`, `api-key`) are never read or forwarded.
 */
export function buildRouterApps(deps: RouterDeps): RouterApps {
  const profile = deps.config.config().profile;
  const limiter = new RateLimiter(rateLimitsOf(profile), deps.now());
  const breakers = new CircuitBreakers();
  const service = new InferenceService(() => deps.config.config(), {
    ledger: deps.ledger,
    limiter,
    forward: { fetch: deps.fetch, auth: deps.auth, breakers, now: deps.now },
    audit: deps.audit,
    now: deps.now,
    log: deps.logger.child({ component: "router.inference" }),
  });
  const metrics = createMetrics(() => deps.config.config(), deps.ledger, () => deps.config.readiness(), deps.now);

  const api = Fastify({
    loggerInstance: deps.logger.child({ component: "router.api" }) as FastifyBaseLogger,
    bodyLimit: MAX_REQUEST_BODY_BYTES,
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    childLoggerFactory: sharedRequestLogger,
    // a request node's HTTP parser refuses (smuggling shapes, a bad request line, oversized headers): OpenAI-shaped, audited, counted
    clientErrorHandler: (err, socket) => {
      const answer = clientErrorAnswer(err);
      if (answer === null || !socket.writable) return void socket.destroy();
      metrics.requests.inc({ api: "other", code: answer.error.code });
      service.auditRefusal("other", answer.error, answer.status);
      socket.end(answer.raw);
    },
  });
  api.removeContentTypeParser("text/plain"); // JSON only: anything else is 415
  // The inference path audits and counts its own refusals; those the HTTP layer makes before it (a body
  // that is not JSON, 413, 415, no such route) are audited and counted here, so that every refusal an
  // agent meets is in the audit log.
  const handledByService = new WeakSet<FastifyRequest>();
  const refusedBeforeService = (req: FastifyRequest, err: unknown): void => {
    const kind = ROUTE_KIND.get(req.routeOptions.url ?? "") ?? "other";
    metrics.requests.inc({ api: kind, code: asRouterError(err).code });
    service.auditRefusal(kind, err);
  };
  api.setErrorHandler((err, req, reply) => {
    if (!handledByService.has(req)) refusedBeforeService(req, err);
    return sendError(reply, req, err);
  });
  api.setNotFoundHandler((req, reply) => {
    const path = req.url.split("?")[0]; // the query may carry anything; the path is cut short (it is the agent's text, echoed and logged)
    const err = new RouterError("not_found", `no route ${req.method.slice(0, 16)} ${path.length > 200 ? `${path.slice(0, 200)}…` : path}`);
    refusedBeforeService(req, err);
    return sendError(reply, req, err);
  });

  for (const [url, kind] of ROUTES) {
    // metric children looked up once per route, not per request (prom-client hashes the labels on each lookup)
    const duration = metrics.duration.labels({ api: kind });
    const okRequests = metrics.requests.labels({ api: kind, code: "ok" });
    api.post(url, async (req, reply) => {
      const end = duration.startTimer();
      try {
        const result = await service.handle(kind, req.body, deps.config.config().profile.sandbox);
        okRequests.inc();
        if (result.kind === "json") return reply.code(result.status).type("application/json").send(result.body);
        return reply
          .code(result.status)
          .headers({ "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-accel-buffering": "no" })
          .send(result.stream);
      } catch (err) {
        handledByService.add(req);
        metrics.requests.inc({ api: kind, code: asRouterError(err).code });
        throw err;
      } finally {
        end();
      }
    });
  }
  api.get("/v1/models", async () => {
    const models = allowedModels(deps.config.config().profile);
    return { object: "list", data: models.map(id => ({ id, object: "model", created: 0, owned_by: "kars" })) };
  });

  // the ops port may be reachable from the pod network: a request must come whole and soon (a held one would hold a stop)
  const ops = Fastify({
    loggerInstance: deps.logger.child({ component: "router.ops" }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: sharedRequestLogger,
    requestTimeout: OPS_REQUEST_TIMEOUT_MS,
    connectionTimeout: OPS_REQUEST_TIMEOUT_MS,
  });
  ops.setErrorHandler((err, req, reply) => sendError(reply, req, err));
  ops.get("/healthz", async () => ({ status: "ok" }));
  ops.get("/readyz", async (_req, reply) => {
    const r = deps.config.readiness();
    return reply.code(r.ready ? 200 : 503).send({ ready: r.ready, reasons: r.reasons });
  });
  ops.get("/metrics", async (_req, reply) => {
    const extra = deps.extraRegistries?.() ?? [];
    const registry = extra.length === 0 ? metrics.registry : Registry.merge([metrics.registry, ...extra]);
    return reply.type(registry.contentType).send(await registry.metrics());
  });
  ops.get("/internal/policy-status", async (req, reply) => {
    verifyBearer(req, deps.config.opsBearerToken());
    const cfg = deps.config.config();
    const now = deps.now();
    const budgets = Object.fromEntries(
      budgetScopes(cfg.profile).map(s => [s.key, Object.fromEntries(WINDOW_KINDS.map(k => [k, { used: deps.ledger.used(s.key, k, now), remaining: deps.ledger.remaining(s, now)[k] ?? null }]))]),
    );
    return reply.send({
      sandbox: cfg.profile.sandbox,
      tenant: cfg.profile.tenant,
      profileDigest: cfg.profileDigest,
      toolPolicyDigest: cfg.toolPolicy?.digest ?? null,
      ready: deps.config.readiness(),
      budgets,
      upstreams: cfg.profile.upstreams.map(u => ({ name: u.name, provider: u.provider, circuit: breakers.status(u.name, now) })),
    });
  });
  return { api, ops, service };
}

/** Checks `authorization: Bearer <ops-token>` in constant time; no configured token = refuse (fail closed). */
function verifyBearer(req: FastifyRequest, expected: string | null): void {
  if (expected === null) throw new RouterError("unauthorized", "ops token not configured; internal endpoints are disabled");
  const header = req.headers.authorization ?? "";
  const given = Buffer.from(header.startsWith("Bearer ") ? header.slice(7).trim() : "");
  const want = Buffer.from(expected);
  if (given.length !== want.length || !timingSafeEqual(given, want)) throw new RouterError("unauthorized", "missing or wrong bearer token");
}

/**
 * Fastify's request logger: the app's own, not a pino child per request (a child re-runs the redaction
 * set-up on every request: ~0.5 KiB of garbage and CPU on the hot path); sendError names the reqId.
 */
function sharedRequestLogger(logger: FastifyBaseLogger): FastifyBaseLogger {
  return logger;
}

/**
 * The answer to a request node's HTTP parser refused before any route saw it (`clientError`): 431
 * `request_too_large` for oversized headers, 408 is not sent (a timed-out client gets nothing), else 400
 * `invalid_request` naming the parser's error code (e.g. HPE_UNEXPECTED_CONTENT_LENGTH for both
 * Content-Length and Transfer-Encoding) — as a raw HTTP/1.1 response that closes the connection, with
 * the OpenAI error body. Null when nothing should be written (the peer reset, or a timeout).
 */
export function clientErrorAnswer(err: Error & { code?: string }): { status: number; error: RouterError; raw: string } | null {
  if (err.code === "ECONNRESET" || err.code === "ERR_HTTP_REQUEST_TIMEOUT") return null;
  const tooLarge = err.code === "HPE_HEADER_OVERFLOW";
  const error = tooLarge
    ? new RouterError("request_too_large", "request header fields too large")
    : new RouterError("invalid_request", `malformed HTTP request (${typeof err.code === "string" ? err.code.slice(0, 40) : "parse error"})`);
  const status = tooLarge ? 431 : 400;
  const body = JSON.stringify(toErrorReply(error).body);
  const raw = `HTTP/1.1 ${status} ${tooLarge ? "Request Header Fields Too Large" : "Bad Request"}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
  return { status, error, raw };
}

function sendError(reply: FastifyReply, req: FastifyRequest, err: unknown): FastifyReply {
  const e = asRouterError(err);
  const out = toErrorReply(e);
  // a 5xx the configuration makes on purpose (no upstream configured: warned about once, at load) is not a failure to log each time
  if (out.status >= 500 && !e.details.configured) req.log.error({ reqId: req.id, err: e.cause ?? e, code: e.code }, "request failed");
  // the refusal is logged (throttled) and audited by the inference service; this line only ties it to the request id
  else req.log.debug({ reqId: req.id, code: e.code, status: out.status }, "request refused");
  return reply.code(out.status).headers(out.headers).type("application/json").send(out.body);
}
