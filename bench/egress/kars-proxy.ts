/**
 * Runs kars' egress proxy for `bench:egress`: `kars-proxy.ts CONFIG_DIR STATE_DIR PORT`. Logs every
 * decision at info to stderr (as in production), prints "LISTEN egress <host:port>" when ready.
 */
import pino from "pino";
import { startEgressProxy } from "../../router/src/egress";

async function main(): Promise<void> {
  const [configDir, stateDir, port] = process.argv.slice(2);
  const proxy = await startEgressProxy({ configDir, stateDir, port: Number(port), logger: pino({ level: "info" }, pino.destination({ dest: 2, sync: false })) });
  process.stdout.write(`LISTEN egress ${proxy.address}\n`);
  process.on("SIGTERM", () => void proxy.close().then(() => process.exit(0)));
}

void main();
