// Prometheus metrics of the egress proxy (STYLE §8 names: kars_<subsystem>_<what>_<unit>). Labels are
// bounded: decision, reason code, way in, file name, result. Hosts never appear in labels.

import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** The egress proxy's metric handles, registered on one registry. */
export interface EgressMetrics {
  decisions: Counter<"decision" | "reason" | "via">;
  decisionSeconds: Histogram<"decision">;
  activeTunnels: Gauge;
  openSockets: Gauge;
  tunnelBytes: Counter<"direction">;
  configReloads: Counter<"file" | "result">;
  configValid: Gauge<"file">;
  blocklistEntries: Gauge;
  blocklistUnparsedLines: Gauge;
  blocklistRefreshes: Counter<"result">;
  /** Seconds since the blocklist sources were last refreshed successfully (set by a collect callback). */
  blocklistStaleness: Gauge;
  learnedHosts: Gauge;
  /** Hosts allowed in Learn mode but not recorded, the list being full (they are in the audit log). */
  learnedHostsDropped: Gauge;
  /** TLS connections relayed with Encrypted Client Hello, the profile allowing it (their real destination is unknown). */
  encryptedClientHellosAllowed: Counter;
}

/**
 * The numbers the proxy changes on every tunnel, as plain fields (a prom-client update hashes its
 * labels each time: several µs per tunnel at thousands of tunnels/s). The metrics read them when
 * scraped (collect callbacks), so the exposition is the same as with direct updates.
 */
export class EgressHotCounters {
  /** Open tunnels and forwarded exchanges now. */
  activeTunnels = 0;
  /** Sockets the proxy holds open now: agents' connections and its own to destinations. */
  openSockets = 0;
  /** TLS connections relayed whose ClientHello hid its real server name (Encrypted Client Hello), the profile allowing it. */
  encryptedClientHellosAllowed = 0;
  /** Bytes relayed agent → destination, and back, by finished tunnels. */
  bytesUpstream = 0;
  bytesDownstream = 0;
  private readonly decisions = new Map<string, { labels: { decision: "allow" | "deny"; reason: string; via: string }; count: number }>();

  /** Counts one decision (labels are bounded: verdict, reason code, way in). */
  countDecision(allow: boolean, reason: string, via: string): void {
    const key = `${reason}|${via}`;
    const entry = this.decisions.get(key);
    if (entry) entry.count++;
    else this.decisions.set(key, { labels: { decision: allow ? "allow" : "deny", reason, via }, count: 1 });
  }

  /** Every (labels, count) seen so far. */
  decisionCounts(): Iterable<{ labels: { decision: "allow" | "deny"; reason: string; via: string }; count: number }> {
    return this.decisions.values();
  }
}

/**
 * Creates and registers the metrics on `registry`. `stalenessSeconds` and `hot` are read at scrape
 * time. Throws if metrics of the same names are already registered there (one proxy per registry).
 */
export function createEgressMetrics(registry: Registry, stalenessSeconds: () => number, hot: EgressHotCounters): EgressMetrics {
  const registers = [registry];
  return {
    decisions: new Counter({
      name: "kars_egress_decisions_total",
      help: "Egress decisions by verdict, reason code and way in.",
      labelNames: ["decision", "reason", "via"],
      registers,
      collect() {
        this.reset();
        for (const { labels, count } of hot.decisionCounts()) this.inc(labels, count);
      },
    }),
    decisionSeconds: new Histogram({
      name: "kars_egress_decision_duration_seconds",
      help: "Time to decide on an egress request, including DNS resolution.",
      labelNames: ["decision"],
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    }),
    activeTunnels: new Gauge({
      name: "kars_egress_active_tunnels",
      help: "Open tunnels and forwarded connections.",
      registers,
      collect() {
        this.set(hot.activeTunnels);
      },
    }),
    openSockets: new Gauge({
      name: "kars_egress_open_sockets",
      help: "Sockets the proxy holds open: agent connections (idle keep-alive ones included) and connections to destinations.",
      registers,
      collect() {
        this.set(hot.openSockets);
      },
    }),
    tunnelBytes: new Counter({
      name: "kars_egress_tunnel_bytes_total",
      help: "Bytes relayed by finished tunnels, by direction (upstream = agent to destination).",
      labelNames: ["direction"],
      registers,
      collect() {
        this.reset();
        this.inc({ direction: "upstream" }, hot.bytesUpstream);
        this.inc({ direction: "downstream" }, hot.bytesDownstream);
      },
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
    learnedHostsDropped: new Gauge({ name: "kars_egress_learned_hosts_dropped", help: "Uses of host:port pairs allowed in Learn mode but not recorded since start, the learned list being full (they are in the audit log).", registers }),
    encryptedClientHellosAllowed: new Counter({
      name: "kars_egress_encrypted_client_hellos_allowed_total",
      help: "TLS connections relayed whose ClientHello hid its real server name (Encrypted Client Hello), allowed by networkPolicy.encryptedClientHello: Allow.",
      registers,
      collect() {
        this.reset();
        this.inc(hot.encryptedClientHellosAllowed);
      },
    }),
  };
}
