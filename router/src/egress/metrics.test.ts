// The per-tunnel numbers are plain fields read at scrape time: the exposition must be what direct
// prom-client updates would give, scrape after scrape (never doubled by a second scrape).
import { Registry } from "prom-client";
import { createEgressMetrics, EgressHotCounters } from "./metrics";

function setup(): { registry: Registry; hot: EgressHotCounters } {
  const registry = new Registry();
  const hot = new EgressHotCounters();
  createEgressMetrics(registry, () => 0, hot);
  return { registry, hot };
}

describe("egress hot counters", () => {
  it.each<[string, (hot: EgressHotCounters) => void, string[]]>([
    ["nothing yet", () => undefined, ["kars_egress_active_tunnels 0", 'kars_egress_tunnel_bytes_total{direction="upstream"} 0']],
    [
      "decisions by verdict, reason and way in",
      (hot) => {
        hot.countDecision(true, "allowlisted", "connect");
        hot.countDecision(true, "allowlisted", "connect");
        hot.countDecision(false, "not_allowlisted", "tls");
      },
      [
        'kars_egress_decisions_total{decision="allow",reason="allowlisted",via="connect"} 2',
        'kars_egress_decisions_total{decision="deny",reason="not_allowlisted",via="tls"} 1',
      ],
    ],
    [
      "open tunnels, open sockets and relayed bytes",
      (hot) => {
        hot.activeTunnels = 3;
        hot.openSockets = 7;
        hot.bytesUpstream = 517;
        hot.bytesDownstream = 4096;
      },
      ["kars_egress_active_tunnels 3", "kars_egress_open_sockets 7", 'kars_egress_tunnel_bytes_total{direction="upstream"} 517', 'kars_egress_tunnel_bytes_total{direction="downstream"} 4096'],
    ],
  ])("exposes %s, the same on every scrape", async (_t, act, lines) => {
    const { registry, hot } = setup();
    act(hot);
    for (let scrape = 0; scrape < 2; scrape++) {
      const text = await registry.metrics();
      for (const line of lines) expect(text.split("\n")).toContain(line);
    }
  });

  it("follows later changes", async () => {
    const { registry, hot } = setup();
    hot.countDecision(true, "learn", "http");
    await registry.metrics();
    hot.countDecision(true, "learn", "http");
    hot.activeTunnels = 1;
    const text = await registry.metrics();
    expect(text).toContain('kars_egress_decisions_total{decision="allow",reason="learn",via="http"} 2');
    expect(text).toContain("kars_egress_active_tunnels 1");
  });
});
