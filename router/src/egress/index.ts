// Entry point of the egress proxy (DESIGN §6): wires configuration, decisions, metrics, Learn
// recording and the network shell together. `kars router` calls startEgressProxy.

import { promises as dns } from "node:dns";
import { mkdir } from "node:fs/promises";
import pino, { type Logger } from "pino";
import { Registry } from "prom-client";
import { EgressConfigStore, type EgressConfigStatus } from "./config-store";
import type { Resolver } from "./decision";
import { cachingResolver } from "./dns-cache";
import { LearnedHosts } from "./learned-hosts";
import { limitLookups } from "./lookup-limit";
import { createEgressMetrics, EgressHotCounters } from "./metrics";
import { DEFAULT_LIMITS, EgressProxyServer, type EgressDecisionEvent, type EgressLimits } from "./proxy-server";
import { LogThrottle } from "../log-throttle";

export type { EgressDecisionEvent, EgressLimits } from "./proxy-server";
export type { EgressConfigStatus } from "./config-store";

/** Options of {@link startEgressProxy}. */
export interface EgressProxyOptions {
  /** The router configuration directory (DESIGN §6), e.g. /etc/kars. Read only. */
  configDir: string;
  /** Writable state directory: learned hosts, blocklist source cache. Created if missing. */
  stateDir: string;
  /** Listen address (default 127.0.0.1). With 127.0.0.1 the proxy also listens on ::1 (same port) when
   * the host has IPv6, because ip6tables REDIRECT sends redirected IPv6 traffic there. */
  host?: string;
  /** Listen port (default 8444; 0 = any free port). */
  port?: number;
  logger?: Logger;
  /** Registry for the kars_egress_* metrics (default: a new one). */
  registry?: Registry;
  /** Receives every decision (allow and deny) for the audit log; it is also logged at info. */
  audit?: (event: EgressDecisionEvent) => void;
  /** DNS resolution (default: getaddrinfo via dns.lookup, all addresses, system order). */
  resolve?: Resolver;
  /** How long a successful resolution is reused, in ms (default 5000; 0 = never). */
  dnsCacheTtlMs?: number;
  /** Limits; unset fields keep DEFAULT_LIMITS. */
  limits?: Partial<EgressLimits>;
  /** Config directory poll period in ms (default 1000). */
  reloadIntervalMs?: number;
  /** Most host:port pairs kept in Learn mode's learned-hosts file (default 10,000); further ones are counted and warned about. */
  maxLearnedHosts?: number;
}

/** A running proxy. `status()` is for /readyz; `metrics` is the registry in use. */
export interface EgressProxy {
  /** "host:port" of the main listener (IPv6 hosts in brackets). */
  address: string;
  close(): Promise<void>;
  status(): EgressConfigStatus;
  registry: Registry;
}

const LOOKUP_TIMEOUT_MS = 5_000;
/** getaddrinfo lookups in flight at once: half of libuv's default pool of 4, the rest kept for file work. */
const MAX_LOOKUPS_IN_FLIGHT = 2;

/**
 * getaddrinfo-based resolver (so /etc/hosts and nsswitch apply, as for any process in the pod), at
 * most MAX_LOOKUPS_IN_FLIGHT at once, each caller answered within LOOKUP_TIMEOUT_MS; rejects with a
 * `code` (ENOTFOUND, ETIMEOUT, …).
 */
export const systemResolver: Resolver = limitLookups(
  async (name) => (await dns.lookup(name, { all: true, order: "verbatim" })).map((a) => a.address),
  MAX_LOOKUPS_IN_FLIGHT,
  LOOKUP_TIMEOUT_MS,
);

/**
 * Starts the egress proxy: loads the configuration directory (a missing or invalid profile.json
 * makes every request denied with reason `no_config` and `status().ready` false — fail closed), loads
 * learned hosts and blocklists, then listens. Rejects if the listener cannot bind.
 */
export async function startEgressProxy(opts: EgressProxyOptions): Promise<EgressProxy> {
  const logger = (opts.logger ?? pino({ level: "info" })).child({ component: "router.egress" });
  const registry = opts.registry ?? new Registry();
  const limits: EgressLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  await mkdir(opts.stateDir, { recursive: true });

  let staleness = (): number => 0;
  const hot = new EgressHotCounters();
  const metrics = createEgressMetrics(registry, () => staleness(), hot);
  const config = new EgressConfigStore({ configDir: opts.configDir, stateDir: opts.stateDir, logger, metrics, reloadIntervalMs: opts.reloadIntervalMs });
  staleness = () => config.stalenessSeconds();
  await config.start();

  const learned = new LearnedHosts(opts.stateDir, 1000, opts.maxLearnedHosts ?? 10_000, (err) => logger.warn({ err }, "egress learned hosts write failed"));
  await learned.load();
  metrics.learnedHosts.set(learned.size);

  // a flood of denials (an agent can make thousands a second) is summed up in the log, not written line by line
  const denyLines = new LogThrottle((counts, total) => logger.info({ suppressed: total, byReason: counts }, "egress deny lines left out (every decision is in the audit log)"));
  const onDecision = (event: EgressDecisionEvent): void => {
    const d = event.decision;
    hot.countDecision(d.allow, d.reason, event.via);
    if (d.allow && d.reason === "learn") {
      const droppedBefore = learned.dropped;
      learned.record(d.host, d.port, Date.parse(event.time));
      metrics.learnedHosts.set(learned.size);
      if (learned.dropped !== droppedBefore) {
        metrics.learnedHostsDropped.set(learned.dropped);
        // said once, then every 1000th: a Strict allowlist made from the file would miss these (the audit log has them)
        if (learned.dropped % 1000 === 1) logger.warn({ host: d.host, port: d.port, dropped: learned.dropped, recorded: learned.size }, "egress learned hosts list is full: hosts allowed in Learn mode are no longer recorded");
      }
    }
    // Every decision is in the audit log; the operator's log gets denials at info, allows at debug
    // (one line per tunnel at info costs about a tenth of the proxy's CPU per tunnel).
    if (!d.allow) {
      if (denyLines.admit(d.reason)) logger.info({ egress: { via: event.via, client: event.client, ...d } }, "egress deny");
    }
    else if (logger.isLevelEnabled("debug")) logger.debug({ egress: { via: event.via, client: event.client, ...d } }, "egress allow");
    opts.audit?.(event);
  };

  const server = new EgressProxyServer({
    snapshot: () => config.snapshot(),
    resolve: cachingResolver(opts.resolve ?? systemResolver, { ttlMs: opts.dnsCacheTtlMs }),
    now: Date.now,
    onDecision,
    metrics,
    hot,
    logger,
    limits,
  });
  const host = opts.host ?? "127.0.0.1";
  let port: number;
  try {
    port = await server.listen(host, opts.port ?? 8444);
    if (host === "127.0.0.1") {
      await server.listen("::1", port).catch((err: NodeJS.ErrnoException) => {
        logger.warn({ code: err.code }, "egress proxy: no IPv6 loopback listener; redirected IPv6 traffic will fail");
      });
    }
  } catch (err) {
    await server.close();
    await config.stop();
    throw err;
  }
  const address = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  logger.info({ address, status: config.status() }, "egress proxy listening");

  return {
    address,
    registry,
    status: () => config.status(),
    async close() {
      await server.close();
      denyLines.flush();
      await config.stop();
      await learned.flush().catch((err) => logger.warn({ err }, "egress learned hosts write failed"));
    },
  };
}
