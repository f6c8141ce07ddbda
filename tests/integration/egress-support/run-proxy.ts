// Runs the egress proxy for the integration tests: `run-proxy.ts CONFIG_DIR STATE_DIR [PORT]`;
// KARS_TEST_LIMITS may hold a JSON object of EgressLimits overrides (for the limit cases), and
// KARS_TEST_METRICS_PORT a loopback port where the proxy's registry is served (GET any path), so that
// tests can read kars_egress_active_tunnels / kars_egress_open_sockets after hostile scenarios.
// Prints "LISTEN egress <host:port>" (the `kars router` line format, DESIGN §0) once listening, logs
// JSON to stderr, and stops cleanly on SIGTERM.
import { createServer } from "node:http";
import pino from "pino";
import { startEgressProxy } from "../../../router/src/egress";

async function main(): Promise<void> {
  const [configDir, stateDir, port] = process.argv.slice(2);
  // debug: allowed tunnels are logged at debug (denials at info); the tests read both from the log
  const logger = pino({ level: "debug" }, pino.destination(2));
  const limits = process.env.KARS_TEST_LIMITS ? (JSON.parse(process.env.KARS_TEST_LIMITS) as Record<string, number>) : {};
  const proxy = await startEgressProxy({ configDir, stateDir, port: port ? Number(port) : 8444, logger, reloadIntervalMs: 200, limits });
  const metricsPort = Number(process.env.KARS_TEST_METRICS_PORT ?? 0);
  if (metricsPort > 0) {
    const metrics = createServer((_req, res) => {
      void proxy.registry.metrics().then((text) => res.end(text));
    });
    await new Promise<void>((resolve) => metrics.listen({ host: "127.0.0.1", port: metricsPort }, resolve));
    metrics.unref();
  }
  // the handler is in place before the LISTEN line: a stop sent as soon as it is read is a clean stop
  process.on("SIGTERM", () => {
    void proxy.close().then(() => process.exit(0));
  });
  process.stdout.write(`LISTEN egress ${proxy.address}\n`);
}

main().catch((err) => {
  process.stderr.write(`run-proxy: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
