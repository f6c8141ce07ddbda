// Prometheus metrics of the egress proxy (STYLE §8 names: kars_<subsystem>_<what>_<unit>). Labels are
// bounded: decision, reason code, way in, file name, result. Hosts never appear in labels.

import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** The egress proxy's metric handles, registered on one registry. */
export interface EgressMetrics {
  decisions: Counter<"decision" | "reason" | "via">;
  decisionSeconds: Histogram<"decision">;
  activeTunnels: Gauge;
  tunnelBytes: Counter<"direction">;
  configReloads: Counter<"file" | "result">;
  configValid: Gauge<"file">;
  blocklistEntries: Gauge;
  blocklistUnparsedLines: Gauge;
  blocklistRefreshes: Counter<"result">;
  /** Seconds since the blocklist sources were last refreshed successfully (set by a collect callback). */
  blocklistStaleness: Gauge;
  learnedHosts: Gauge;
}

/**
 * Creates and registers the metrics on `registry`. `stalenessSeconds` is read at scrape time.
 * Throws if metrics of the same names are already registered there (one proxy per registry).
 */
export function createEgressMetrics(registry: Registry, stalenessSeconds: () => number): EgressMetrics {
  const registers = [registry];
  return {
    decisions: new Counter({
      name: "kars_egress_decisions_total",
      help: "Egress decisions by verdict, reason code and way in.",
      labelNames: ["decision", "reason", "via"],
      registers,
    }),
    decisionSeconds: new Histogram({
      name: "kars_egress_decision_duration_seconds",
      help: "Time to decide on an egress request, including DNS resolution.",
      labelNames: ["decision"],
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    }),
    activeTunnels: new Gauge({ name: "kars_egress_active_tunnels", help: "Open tunnels and forwarded connections.", registers }),
    tunnelBytes: new Counter({
      name: "kars_egress_tunnel_bytes_total",
      help: "Bytes relayed, by direction (upstream = agent to destination).",
      labelNames: ["direction"],
      registers,
    }),
    configReloads: new Counter({
      name: "kars_egress_config_reloads_total",
      help: "Configuration file (re)loads by file and result.",
      labelNames: ["file", "result"],
      registers,
    }),
    configValid: new Gauge({
      name: "kars_egress_config_valid",
      help: "1 when the file's current content is in use, 0 when a bad version is being ignored.",
      labelNames: ["file"],
      registers,
    }),
    blocklistEntries: new Gauge({ name: "kars_egress_blocklist_entries", help: "Distinct blocklist entries loaded.", registers }),
    blocklistUnparsedLines: new Gauge({
      name: "kars_egress_blocklist_unparsed_lines",
      help: "Lines in the loaded blocklists that matched no supported syntax.",
      registers,
    }),
    blocklistRefreshes: new Counter({
      name: "kars_egress_blocklist_refreshes_total",
      help: "Blocklist source fetches by result.",
      labelNames: ["result"],
      registers,
    }),
    blocklistStaleness: new Gauge({
      name: "kars_egress_blocklist_staleness_seconds",
      help: "Seconds since the oldest configured blocklist source was last fetched successfully (0 without sources).",
      registers,
      collect() {
        this.set(stalenessSeconds());
      },
    }),
    learnedHosts: new Gauge({ name: "kars_egress_learned_hosts", help: "Distinct host:port pairs recorded in Learn mode.", registers }),
  };
}
