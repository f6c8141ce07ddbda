/**
 * `kars router --config-dir DIR [--state-dir DIR]` (DESIGN §0): runs one sandbox's inference router
 * and egress proxy from a router configuration directory (DESIGN §6). Prints `LISTEN api|egress|ops
 * <host:port>` on stdout once every listener is bound (logs go to stderr), and stops cleanly on
 * SIGINT/SIGTERM. Exit status: 0 after a clean stop, 2 for bad arguments, 1 when it cannot start.
 */
import * as os from "node:os";
import * as path from "node:path";
import { startRouter, type EgressStarter } from "../router/src/server";

const usage = `usage: kars router --config-dir DIR [--state-dir DIR]
  --config-dir DIR  the router configuration directory (DESIGN §6: profile.json and friends, as projected into /etc/kars)
  --state-dir DIR   budgets, audit log and signing key (default ~/.cache/kars/router-state); the audit log's
                    public key is DIR/audit-signing-key.pub.pem, for \`kars audit verify DIR/audit --pubkey …\``;

/** Parsed command line; throws Error with the usage on anything unexpected. */
export function parseRouterArgs(args: string[]): { configDir: string; stateDir: string } {
  let configDir: string | undefined;
  let stateDir: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split(/=(.*)/s, 2);
    const value = () => {
      const v = inline ?? args[++i];
      if (v === undefined || v === "") throw new Error(`${flag} needs a value\n${usage}`);
      return v;
    };
    if (flag === "--config-dir") configDir = value();
    else if (flag === "--state-dir") stateDir = value();
    else throw new Error(`unknown argument ${args[i]}\n${usage}`);
  }
  if (!configDir) throw new Error(`--config-dir is required\n${usage}`);
  return {
    configDir: path.resolve(configDir),
    stateDir: path.resolve(stateDir ?? path.join(os.homedir(), ".cache", "kars", "router-state")),
  };
}

/** Runs the router until SIGINT/SIGTERM. `startEgress` is a seam for tests (default: router/src/egress). */
export async function main(args: string[], startEgress?: EgressStarter | null): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(usage);
    return 0;
  }
  let parsed;
  try {
    parsed = parseRouterArgs(args);
  } catch (err) {
    console.error((err as Error).message);
    return 2;
  }
  // Stop signals are caught before the LISTEN lines go out: a supervisor that stops the router as soon
  // as it reads them must get a clean stop, not the default action of a signal nobody handles yet.
  let stopRequested!: () => void;
  const stopped = new Promise<void>(resolve => (stopRequested = resolve));
  const stop = () => {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    stopRequested();
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  let router;
  try {
    router = await startRouter({ ...parsed, startEgress });
  } catch (err) {
    stop();
    throw err;
  }
  process.stdout.write(`LISTEN api ${router.addresses.api}\n`);
  if (router.addresses.egress) process.stdout.write(`LISTEN egress ${router.addresses.egress}\n`);
  process.stdout.write(`LISTEN ops ${router.addresses.ops}\n`);
  await stopped;
  await router.close();
  return 0;
}
