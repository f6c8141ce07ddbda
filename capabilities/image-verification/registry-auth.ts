import * as fs from "node:fs";
import { canonicalRegistry } from "./image-reference";
import type { RegistryCredentials } from "./registry-client";

/**
 * Registry credentials from a Docker config file — the `.dockerconfigjson` of a Secret of type
 * `kubernetes.io/dockerconfigjson`, mounted into the controller (the controller itself may not read
 * Secrets: manifests/rbac) — as `{ "auths": { "<registry>": { "auth": base64("user:pass") } or
 * { "username", "password" } } }`. Keys are registry hosts, optionally as URLs
 * (`https://index.docker.io/v1/` is Docker Hub), put in the spelling images are matched in
 * (canonicalRegistry). Throws an Error naming the entry on anything it cannot use, and never puts a
 * credential in a message.
 */
export function parseDockerConfig(text: string): Map<string, RegistryCredentials> {
  let doc: { auths?: Record<string, { auth?: unknown; username?: unknown; password?: unknown }> };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch {
    throw new Error("registry auth file: not JSON (a Docker config.json / .dockerconfigjson is expected)");
  }
  if (!doc || typeof doc !== "object" || !doc.auths || typeof doc.auths !== "object") throw new Error('registry auth file: no "auths" object');
  const out = new Map<string, RegistryCredentials>();
  for (const [key, entry] of Object.entries(doc.auths)) {
    const host = canonicalRegistry(key.replace(/^https?:\/\//, "").replace(/\/.*$/, ""));
    let username: unknown = entry?.username;
    let password: unknown = entry?.password;
    if (typeof entry?.auth === "string") {
      const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon < 0) throw new Error(`registry auth file: auths[${JSON.stringify(key)}].auth is not base64 of user:password`);
      username = decoded.slice(0, colon);
      password = decoded.slice(colon + 1);
    }
    if (typeof username !== "string" || typeof password !== "string" || username === "") throw new Error(`registry auth file: auths[${JSON.stringify(key)}] has no username and password`);
    out.set(host, { username, password });
  }
  return out;
}

/** How often a mounted auth file is looked at for changes (ms). */
export const AUTH_FILE_CHECK_MS = 10_000;

/**
 * The credentials of a mounted Docker config file, re-read when its modification time changes
 * (checked at most every AUTH_FILE_CHECK_MS; the kubelet updates a mounted Secret in place). A file that
 * cannot be read or parsed keeps the last good credentials (none at first) and is reported once per
 * change through `onError` (message only: never a credential).
 */
export class RegistryAuthFile {
  private creds = new Map<string, RegistryCredentials>();
  private mtimeMs = -1;
  private checkedAt = -Infinity;

  constructor(
    private readonly file: string,
    private readonly onError: (message: string) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.current();
  }

  /** The credentials now in force. */
  current(): ReadonlyMap<string, RegistryCredentials> {
    if (this.now() - this.checkedAt < AUTH_FILE_CHECK_MS) return this.creds;
    this.checkedAt = this.now();
    let mtimeMs: number;
    try {
      mtimeMs = fs.statSync(this.file).mtimeMs;
    } catch (err) {
      if (this.mtimeMs !== -2) this.onError(`registry auth file ${this.file}: ${(err as NodeJS.ErrnoException).code ?? "unreadable"}; keeping the last good credentials`);
      this.mtimeMs = -2;
      return this.creds;
    }
    if (mtimeMs === this.mtimeMs) return this.creds;
    this.mtimeMs = mtimeMs;
    try {
      this.creds = parseDockerConfig(fs.readFileSync(this.file, "utf8"));
    } catch (err) {
      this.onError(`${(err as Error).message}; keeping the last good credentials`);
    }
    return this.creds;
  }
}
