/**
 * Starts `node bin/kars.js router --config-dir … --state-dir …` (or the image's bundle) as a real
 * process (on the pinned Node 24, as `npm test` provides) and waits for its `LISTEN api|egress|ops
 * <host:port>` lines.
 *
 * The child never reaches a real identity endpoint: Azure identity variables inherited from the
 * machine (Workload Identity, App Service / Arc / Cloud Shell managed identity) are dropped, IMDS is
 * off (`KARS_AZURE_IMDS=off`), and should a test turn it on, `AZURE_POD_IDENTITY_AUTHORITY_HOST`
 * already points IMDS at a closed loopback port instead of 169.254.169.254. Tests pass their own
 * values in `env`, which win. The child logs at `info`, or at `KARS_TEST_ROUTER_LOG` when set (e.g.
 * `debug`, to see each stop step when a test fails).
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import { ROUTER_IMAGE_ENV, ROUTER_NODE_FLAGS } from "../../../router/src/image-runtime";
import { LOG_FLUSH_MS } from "../../../router/src/server";

/** A router child process and what it printed. */
export interface RouterProcess {
  child: ChildProcess;
  listen: Record<string, string>;
  /** stderr so far (logs), for assertions and debugging. */
  logs(): string;
  /**
   * stderr once every line made so far has been written: the router gathers log lines and writes
   * them at least every LOG_FLUSH_MS (router/src/server.ts), so an assertion that a line is absent
   * must wait that long or it would pass on lines not yet written.
   */
  settledLogs(): Promise<string>;
  /** SIGTERM and wait; resolves to the exit code, rejects (with stderr) when a signal ended the process instead. */
  stop(): Promise<number>;
  /** SIGKILL and wait. */
  kill9(): Promise<void>;
}

const ROOT = path.resolve(__dirname, "../../..");

/** Variables @azure/identity and MSAL read to pick a credential or an identity endpoint. */
const INHERITED_IDENTITY_ENV = [
  "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST", "AZURE_POD_IDENTITY_AUTHORITY_HOST",
  "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT",
  "IMDS_ENDPOINT", "MSI_ENDPOINT", "MSI_SECRET",
];

/** Where IMDS goes unless a test names its stand-in: loopback port 1, where nothing listens. */
export const UNREACHABLE_IMDS = "http://127.0.0.1:1";

/**
 * The child's environment: this process's minus identity variables, safe defaults, then `env`.
 * Throws when the result could send a token request off the machine: an IMDS host or (with Workload
 * Identity configured) an authority host that is not on 127.0.0.1.
 */
export function routerEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const inherited = { ...process.env };
  for (const name of INHERITED_IDENTITY_ENV) delete inherited[name];
  const out: NodeJS.ProcessEnv = { ...inherited, KARS_LOG_LEVEL: process.env.KARS_TEST_ROUTER_LOG ?? "info", KARS_AZURE_IMDS: "off", AZURE_POD_IDENTITY_AUTHORITY_HOST: UNREACHABLE_IMDS, ...env };
  if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(out.AZURE_POD_IDENTITY_AUTHORITY_HOST ?? "")) {
    throw new Error(`router tests must point AZURE_POD_IDENTITY_AUTHORITY_HOST at http://127.0.0.1:<port>, got ${out.AZURE_POD_IDENTITY_AUTHORITY_HOST}`);
  }
  if (out.AZURE_FEDERATED_TOKEN_FILE && !/^https:\/\/127\.0\.0\.1:\d+$/.test(out.AZURE_AUTHORITY_HOST ?? "")) {
    throw new Error(`router tests with Workload Identity must point AZURE_AUTHORITY_HOST at https://127.0.0.1:<port>, got ${out.AZURE_AUTHORITY_HOST}`);
  }
  return out;
}

/** How the router runs: `kars router` through bin/kars.js (default), or the image's bundle. */
export interface RouterRuntime {
  /**
   * A bundle built with ROUTER_ESBUILD_ARGS (router/src/image-runtime.ts): run as the image runs it,
   * with ROUTER_NODE_FLAGS and ROUTER_IMAGE_ENV (which the test's `env` may override).
   */
  bundle?: string;
}

/** Starts the router with `routerEnv(env)`; rejects when it exits or prints no LISTEN lines within 60 s. */
export async function startRouterProcess(configDir: string, stateDir: string, env: NodeJS.ProcessEnv = {}, runtime: RouterRuntime = {}): Promise<RouterProcess> {
  const args = ["--config-dir", configDir, "--state-dir", stateDir];
  const argv = runtime.bundle ? [...ROUTER_NODE_FLAGS, runtime.bundle, ...args] : [path.join(ROOT, "bin/kars.js"), "router", ...args];
  const child = spawn(process.execPath, argv, {
    cwd: ROOT,
    env: routerEnv(runtime.bundle ? { ...ROUTER_IMAGE_ENV, ...env } : env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stderr?.on("data", d => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(r => child.on("exit", (code, signal) => r({ code, signal })));
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
    settledLogs: async () => {
      await new Promise((resolve) => setTimeout(resolve, 3 * LOG_FLUSH_MS));
      return stderr;
    },
    stop: async () => {
      child.kill("SIGTERM");
      const { code, signal } = await exited;
      if (code === null) throw new Error(`router was ended by ${signal}, not by its own stop; stderr:\n${stderr}`);
      return code;
    },
    kill9: async () => {
      child.kill("SIGKILL");
      await exited;
    },
  };
}
