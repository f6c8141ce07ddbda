import type { TokenCredential } from "@azure/identity";
import type { AddressInfo } from "node:net";
import pino, { type Logger } from "pino";
import type { Registry } from "prom-client";
import { buildRouterApps } from "./app";
import { AuditLog } from "./audit/audit-log";
import { AuditThrottle } from "./audit/audit-throttle";
import { loadOrCreateSigningKey } from "./audit/checkpoint";
import { BudgetJournal } from "./budget/journal";
import { BudgetLedger } from "./budget/ledger";
import { ConfigDirectory } from "./config/config-dir";
import type { UpstreamSpec } from "./config/profile";
import { CredentialRegistry } from "./credential-registry";
import { startEgressProxy } from "./egress";
import type { EgressDecisionEvent } from "./egress/proxy-server";
import { DEFAULT_LISTEN, formatAddress, parseListenAddress } from "./listen-address";
import { routerLogger } from "./router-logger";
import type { UpstreamAuth } from "./upstream/forward";
import { authHeaders, COGNITIVE_SERVICES_SCOPE, usesEntraToken } from "./upstream/request-target";
import { TokenCache } from "./upstream/token-cache";
import { createUndiciFetch } from "./upstream/upstream-fetch";

/** What the egress proxy module (router/src/egress, built separately) must provide. */
export interface EgressHandle {
  address: string;
  close(): Promise<void>;
  status(): { ready: boolean; reasons: string[] };
  registry?: Registry;
}

/** Starts the egress proxy (default: startEgressProxy of router/src/egress; tests may pass their own or null). */
export type EgressStarter = (opts: {
  configDir: string;
  stateDir: string;
  host?: string;
  port?: number;
  logger?: Logger;
  audit?: (event: EgressDecisionEvent) => void;
}) => Promise<EgressHandle>;

/** Options of startRouter. */
export interface StartRouterOptions {
  configDir: string;
  stateDir: string;
  /** Environment to read (default process.env); see startRouter for the variables. */
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** The egress proxy starter; null = run without egress (tests of the inference path). */
  startEgress?: EgressStarter | null;
}

/** A running router: its bound addresses (`host:port`) and a clean stop. */
export interface RunningRouter {
  addresses: { api: string; egress: string | null; ops: string };
  close(): Promise<void>;
}

/** The egress proxy of router/src/egress (issue 4), as the router starts it. */
export const defaultEgressStarter: EgressStarter = opts => startEgressProxy(opts);

/**
 * Starts a router (DESIGN §2, §6): the only place that reads the environment and listens.
 * Reads profile.json etc. from `configDir` (hot-reloaded), keeps the budget journal and audit log in
 * `stateDir`, listens on `listen` from the profile or 127.0.0.1:8443 (api), 127.0.0.1:8444 (egress),
 * :9090 (ops). Environment: `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE`,
 * `AZURE_AUTHORITY_HOST` (Workload Identity), `KARS_AZURE_IMDS=off` (no IMDS fallback),
 * `KARS_LOG_LEVEL` (default info), `KARS_CONFIG_POLL_MS` (default 2000).
 * Throws when profile.json is missing/invalid, the state directory is unusable, or a port cannot bind.
 */
export async function startRouter(opts: StartRouterOptions): Promise<RunningRouter> {
  const env = opts.env ?? process.env;
  // Log lines go to stderr with synchronous writes (no thread-pool hop), gathered: written once
  // LOG_BUFFER_BYTES have accumulated or at the next flush, every LOG_FLUSH_MS, and at once on close
  // and on process exit (an uncaught exception included). One write(2) per line would wake the pipe's
  // reader (the container runtime) once per request, competing for the pod's CPU with the agent's
  // requests; gathered, a line is at most LOG_FLUSH_MS late, and only a SIGKILL can lose that much.
  // The audit log (audit-log.ts), the security record, is written and synced on its own terms.
  const destination = opts.logger ? undefined : pino.destination({ dest: 2, sync: true, minLength: LOG_BUFFER_BYTES, periodicFlush: LOG_FLUSH_MS });
  const flushLog = (): void => {
    try {
      destination?.flushSync();
    } catch {
      // stderr gone: nothing left to tell
    }
  };
  if (destination) process.once("exit", flushLog);
  // every credential put in an upstream request is remembered, and cut out of any log line that quotes it
  const credentials = new CredentialRegistry();
  const logger = destination ? routerLogger(env.KARS_LOG_LEVEL ?? "info", destination, credentials) : (opts.logger as Logger);
  const config = new ConfigDirectory(opts.configDir, logger.child({ component: "router.config" }));
  const signing = loadOrCreateSigningKey(opts.configDir, opts.stateDir);
  const auditLog = AuditLog.open(opts.stateDir, { signingKey: signing.privateKey });
  // calls in flight when the router last stopped (a kill, a crash) are audited now, before the journal forgets them
  const { journal, counters, skipped } = BudgetJournal.open(opts.stateDir, Date.now(), undefined, unsettled => {
    const { sandbox, tenant } = config.config().profile;
    for (const r of unsettled) auditLog.record({ kind: "unsettled", sandbox, tenant, reservation: r.id, counters: r.counters, reservedTokens: r.tokens, usedTokens: r.tokens });
    auditLog.flush();
    logger.warn({ calls: unsettled.length, tokens: unsettled.reduce((n, r) => n + r.tokens, 0) }, "calls in flight when the router last stopped were never settled: charged in full, and audited as unsettled");
  });
  if (skipped > 0) logger.warn({ skipped }, "budget journal had unreadable lines (torn write); skipped");
  const ledger = new BudgetLedger(journal, counters);
  // refusals that cost nothing are recorded one by one up to a rate, then counted (audit-throttle.ts)
  const audit = new AuditThrottle(auditLog);
  const undici = createUndiciFetch();
  let tokens: TokenCache | null = null;
  const credentialHeaders = async (upstream: UpstreamSpec): Promise<Record<string, string>> => {
    if (usesEntraToken(upstream)) {
      tokens ??= new TokenCache(azureCredential(env));
      return { authorization: `Bearer ${await tokens.get(COGNITIVE_SERVICES_SCOPE)}` };
    }
    const key = config.apiKey(upstream);
    if (key === undefined) throw new Error(`no API key for upstream ${upstream.name} as this request was admitted (apiKeyFile unreadable, or the upstream changed in a reload since)`);
    return authHeaders(upstream, key);
  };
  const auth: UpstreamAuth = async upstream => {
    const headers = await credentialHeaders(upstream);
    credentials.rememberHeaders(headers);
    return headers;
  };

  const listen = { ...DEFAULT_LISTEN, ...config.config().profile.listen };
  let egress: EgressHandle | null = null;
  const startEgress = opts.startEgress === undefined ? defaultEgressStarter : opts.startEgress;
  const apps = buildRouterApps({
    config: {
      config: () => config.config(),
      readiness: () => {
        const own = config.readiness();
        const e = egress?.status();
        return e ? { ready: own.ready && e.ready, reasons: [...own.reasons, ...e.reasons.map(r => `egress: ${r}`)] } : own;
      },
      opsBearerToken: () => config.opsBearerToken(),
    },
    ledger,
    audit,
    fetch: undici.fetch,
    auth,
    now: Date.now,
    logger,
    extraRegistries: () => (egress?.registry ? [egress.registry] : []),
  });

  const closers: (() => Promise<void> | void)[] = [];
  const close = async () => {
    for (const c of closers.reverse()) {
      try {
        const t0 = Date.now();
        await c();
        logger.debug({ ms: Date.now() - t0, step: c.toString().slice(0, 60) }, "stopped");
      } catch (err) {
        logger.error({ err }, "error while stopping");
      }
    }
    closers.length = 0;
  };
  const closeLog = (): void => {
    flushLog();
    process.off("exit", flushLog);
  };
  // Stopping (closers run last first): the API stops taking calls and gives those in flight
  // SHUTDOWN_GRACE_MS; upstream calls still open after another grace (a stream that trickles on, whose
  // agent has gone) are aborted, charged their reservation and audited; then the logs are closed.
  closers.push(
    closeLog,
    () => journal.close(),
    () => auditLog.close(),
    () => audit.flush(),
    () => apps.service.drain(SHUTDOWN_GRACE_MS),
    () => undici.close(SHUTDOWN_GRACE_MS),
    () => config.close(),
  );
  try {
    const api = parseListenAddress(listen.api);
    await apps.api.listen({ host: api.host, port: api.port });
    closers.push(() => closeWithGrace(apps.api.close(), () => apps.api.server.closeAllConnections(), SHUTDOWN_GRACE_MS));
    if (startEgress) {
      const e = parseListenAddress(listen.egress);
      // Every egress decision goes into the same hash-chained audit log as inference decisions.
      const auditEgress = (ev: EgressDecisionEvent): void => {
        const { profile } = config.config();
        const d = ev.decision;
        audit.record({
          kind: "egress", sandbox: profile.sandbox, tenant: profile.tenant, via: ev.via,
          host: d.host ?? null, port: d.port, decision: d.allow ? "allowed" : "refused", reason: d.reason,
          ...(!d.allow && d.detail !== undefined ? { detail: d.detail.slice(0, 200) } : {}),
        });
      };
      egress = await startEgress({ configDir: opts.configDir, stateDir: opts.stateDir, host: e.host, port: e.port, logger, audit: auditEgress });
      closers.push(() => egress?.close());
    }
    const ops = parseListenAddress(listen.ops);
    await apps.ops.listen({ host: ops.host, port: ops.port });
    // the ops port (scrapes, probes) is let go of first and briefly: a connection held open on it must not hold the stop
    closers.push(() => closeWithGrace(apps.ops.close(), () => apps.ops.server.closeAllConnections(), OPS_SHUTDOWN_GRACE_MS));
  } catch (err) {
    await close();
    throw err;
  }
  config.watch(Number(env.KARS_CONFIG_POLL_MS ?? 2000));
  const pruner = setInterval(() => {
    const now = Date.now();
    ledger.prune(now);
    try {
      if (journal.size() > JOURNAL_COMPACT_BYTES) journal.compact(ledger.currentCounters(now));
    } catch (err) {
      logger.error({ err }, "budget journal compaction failed; the journal keeps growing");
    }
  }, 60_000);
  pruner.unref();
  closers.push(() => clearInterval(pruner));
  return {
    addresses: {
      api: formatAddress(apps.api.server.address() as AddressInfo),
      egress: egress?.address ?? null,
      ops: formatAddress(apps.ops.server.address() as AddressInfo),
    },
    close,
  };
}

/** Log output is written once this many bytes have gathered… */
export const LOG_BUFFER_BYTES = 4096;
/** …or this long (ms) after a line was made, whichever comes first. */
export const LOG_FLUSH_MS = 100;

/** The budget journal is compacted in place once it grows past this (bytes). */
export const JOURNAL_COMPACT_BYTES = 64 * 1024 * 1024;

/** How long a stop waits for in-flight agent requests before cutting their connections (ms). */
export const SHUTDOWN_GRACE_MS = 5000;

/** How long (ms) requests on the ops port may take to finish when the router stops (scrapes and probes are quick). */
export const OPS_SHUTDOWN_GRACE_MS = 1000;

async function closeWithGrace(closing: Promise<unknown>, force: () => void, graceMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<void>(resolve => {
    timer = setTimeout(() => {
      force();
      resolve();
    }, graceMs);
  });
  await Promise.race([closing, grace]);
  clearTimeout(timer);
  await closing;
}

/**
 * Workload Identity (federated token file) with IMDS fallback (issue 3). With a non-public authority
 * host (sovereign cloud proxies, a test token endpoint) instance discovery is disabled, so MSAL asks
 * only that host. IMDS (169.254.169.254, or `AZURE_POD_IDENTITY_AUTHORITY_HOST` when set) is skipped
 * with `KARS_AZURE_IMDS=off`.
 * IMDS is reached only when the Workload Identity variables are absent: ManagedIdentityCredential
 * (@azure/identity 4.13) reads AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE from
 * process.env itself and then does a second Workload Identity exchange instead of asking IMDS, so a
 * refused federated token fails the chain (tests/integration/router-imds.spec.ts).
 */
function azureCredential(env: NodeJS.ProcessEnv): TokenCredential {
  // Loaded on first use: @azure/identity (with MSAL) is ~30 MiB of heap that API-key-only routers never need.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { ChainedTokenCredential, ManagedIdentityCredential, WorkloadIdentityCredential } = require("@azure/identity") as typeof import("@azure/identity");
  const chain: TokenCredential[] = [];
  const authorityHost = env.AZURE_AUTHORITY_HOST;
  const knownAuthority = !authorityHost || /^https:\/\/login\.(microsoftonline\.(com|us)|chinacloudapi\.cn)\/?$/.test(authorityHost);
  if (env.AZURE_FEDERATED_TOKEN_FILE && env.AZURE_CLIENT_ID && env.AZURE_TENANT_ID) {
    chain.push(
      new WorkloadIdentityCredential({
        tenantId: env.AZURE_TENANT_ID,
        clientId: env.AZURE_CLIENT_ID,
        tokenFilePath: env.AZURE_FEDERATED_TOKEN_FILE,
        authorityHost,
        disableInstanceDiscovery: !knownAuthority,
      }),
    );
  }
  if (env.KARS_AZURE_IMDS !== "off") chain.push(env.AZURE_CLIENT_ID ? new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID }) : new ManagedIdentityCredential());
  if (chain.length === 0) throw new Error("no Azure credential configured (Workload Identity env absent and KARS_AZURE_IMDS=off)");
  return chain.length === 1 ? chain[0] : new ChainedTokenCredential(...chain);
}
