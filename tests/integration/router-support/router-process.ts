/**
 * Starts `node bin/kars.js router --config-dir … --state-dir …` as a real process (on the pinned Node
 * 24, as `npm test` provides) and waits for its `LISTEN api|egress|ops <host:port>` lines.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";

export interface RouterProcess {
  child: ChildProcess;
  listen: Record<string, string>;
  /** stderr so far (logs), for assertions and debugging. */
  logs(): string;
  /** SIGTERM and wait; resolves to the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait. */
  kill9(): Promise<void>;
}

const ROOT = path.resolve(__dirname, "../../..");

export async function startRouterProcess(configDir: string, stateDir: string, env: NodeJS.ProcessEnv = {}): Promise<RouterProcess> {
  const child = spawn(process.execPath, [path.join(ROOT, "bin/kars.js"), "router", "--config-dir", configDir, "--state-dir", stateDir], {
    cwd: ROOT,
    env: { ...process.env, KARS_LOG_LEVEL: "info", KARS_AZURE_IMDS: "off", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stderr?.on("data", d => (stderr += d));
  const exited = new Promise<number | null>(r => child.on("exit", code => r(code)));
  const listen = await new Promise<Record<string, string>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`router did not print LISTEN lines in time; stderr:\n${stderr}`)), 60_000);
    child.stdout?.on("data", d => {
      stdout += d;
      const lines = Object.fromEntries([...stdout.matchAll(/^LISTEN (api|egress|ops) (\S+)$/gm)].map(m => [m[1], m[2]]));
      if (lines.api && lines.ops && /^LISTEN ops /m.test(stdout)) {
        clearTimeout(timer);
        resolve(lines);
      }
    });
    child.on("exit", code => {
      clearTimeout(timer);
      reject(new Error(`router exited with ${code} before listening; stderr:\n${stderr}`));
    });
  });
  return {
    child,
    listen,
    logs: () => stderr,
    stop: async () => {
      child.kill("SIGTERM");
      return exited;
    },
    kill9: async () => {
      child.kill("SIGKILL");
      await exited;
    },
  };
}
