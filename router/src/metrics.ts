import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { BudgetLedger } from "./budget/ledger";
import { WINDOW_KINDS } from "./budget/windows";
import type { ConfigReadiness } from "./config/config-dir";
import { budgetScopes, type RuntimeConfig } from "./inference/runtime-config";

/** The router's Prometheus metrics (STYLE §8 names), in their own registry (no process globals). */
export interface RouterMetrics {
  registry: Registry;
  requests: Counter<"api" | "code">;
  duration: Histogram<"api">;
}

/**
 * Creates the registry: `kars_router_requests_total{api,code}`, `kars_router_request_duration_seconds{api}`,
 * `kars_router_budget_remaining_tokens{scope,window}` (scope ∈ sandbox|tenant, collected on scrape),
 * `kars_router_config_ready` (1/0). No Node process metrics (the kubelet reports the container's CPU and memory). Label values are bounded.
 */
export function createMetrics(config: () => RuntimeConfig, ledger: BudgetLedger, readiness: () => ConfigReadiness, now: () => number): RouterMetrics {
  const registry = new Registry();
  const requests = new Counter({ name: "kars_router_requests_total", help: "Inference requests by API and outcome code (ok or the error code).", labelNames: ["api", "code"] as const, registers: [registry] });
  const duration = new Histogram({
    name: "kars_router_request_duration_seconds",
    help: "Time from request to response headers, including the upstream.",
    labelNames: ["api"] as const,
    buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  new Gauge({
    name: "kars_router_budget_remaining_tokens",
    help: "Tokens left in the current UTC window, per scope; absent when the window has no limit.",
    labelNames: ["scope", "window"] as const,
    registers: [registry],
    collect() {
      this.reset();
      const t = now();
      for (const scope of budgetScopes(config().profile)) {
        const left = ledger.remaining(scope, t);
        for (const kind of WINDOW_KINDS) if (left[kind] !== undefined) this.set({ scope: scope.key.split(":")[0], window: kind }, left[kind] as number);
      }
    },
  });
  new Gauge({
    name: "kars_router_config_ready",
    help: "1 when every configuration file loaded, 0 while one is rejected (see /readyz).",
    registers: [registry],
    collect() {
      this.set(readiness().ready ? 1 : 0);
    },
  });
  return { registry, requests, duration };
}
