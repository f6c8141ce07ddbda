/**
 * Runs kars' egress proxy for `bench:egress`: `kars-proxy.ts CONFIG_DIR STATE_DIR PORT LOG_FILE`.
 * Logs every decision at info (as in production) to LOG_FILE, as Squid and smokescreen write their
 * access logs; prints "LISTEN egress <host:port>" when ready.
 */
import pino from "pino";
import { startEgressProxy } from "../../router/src/egress";

async function main(): Promise<void> {
  const [configDir, stateDir, port, logFile] = process.argv.slice(2);
  // buffered like Squid's stdio access log: one write per 4 KiB of log lines, not per line
  const logger = pino({ level: "info" }, pino.destination({ dest: logFile, sync: false, minLength: 4096 }));
  const proxy = await startEgressProxy({ configDir, stateDir, port: Number(port), logger });
  process.stdout.write(`LISTEN egress ${proxy.address}\n`);
  process.on("SIGTERM", () => void proxy.close().then(() => process.exit(0)));
}

void main();
