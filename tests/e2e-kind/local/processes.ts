/**
 * Small process helpers for the local providers: free ports, detached children with their output in
 * a log file, polling until an HTTPS endpoint answers, and stopping process groups.
 */
import { spawn } from "node:child_process";
import { openSync, closeSync } from "node:fs";
import { createServer } from "node:net";
import https from "node:https";

/** A free TCP port on 127.0.0.1 (the kernel picks it; there is a small race until it is bound). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Starts `bin args` in its own process group, stdout+stderr appended to `logFile`. Returns the pid. */
export function startLogged(bin: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = process.env): number {
  const fd = openSync(logFile, "a");
  const child = spawn(bin, args, { detached: true, stdio: ["ignore", fd, fd], env });
  closeSync(fd);
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${bin}`);
  return child.pid;
}

/** True while a process with `pid` exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM to each process group, then SIGKILL to whatever is left after `graceMs`. */
export async function stopGroups(pids: number[], graceMs = 5000): Promise<void> {
  for (const pid of pids) signalGroup(pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && pids.some(isAlive)) await sleep(100);
  for (const pid of pids) if (isAlive(pid)) signalGroup(pid, "SIGKILL");
  while (pids.some(isAlive)) await sleep(50);
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  }
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms));

/** TLS material for `httpsGet`. */
export interface TlsClient {
  /** CA to verify the server with; omit only for a local component with a self-signed cert. */
  ca?: Buffer;
  rejectUnauthorized?: boolean;
  cert?: Buffer;
  key?: Buffer;
}

/** GET an HTTPS URL; resolves with status and body, rejects on connection errors. */
export function httpsGet(url: string, tls: TlsClient, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ...tls, timeout: timeoutMs }, res => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

/**
 * Polls `f` every 250 ms until it returns a value other than undefined/false, retrying when it
 * throws; throws naming `what` (and the last error) after `timeoutMs`.
 */
export async function eventually<T>(what: string, f: () => T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = f();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ""}`);
}

/**
 * Polls `check` until it resolves true or `timeoutMs` passes; `describe` names what we waited for
 * and `onTimeout` adds context (e.g. a log tail) to the error.
 */
export async function waitFor(describe: string, check: () => Promise<boolean>, timeoutMs: number, onTimeout?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (e) {
      last = e;
    }
    await sleep(200);
  }
  const why = last instanceof Error ? ` (last error: ${last.message})` : "";
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${describe}${why}${onTimeout ? `\n${onTimeout()}` : ""}`);
}
