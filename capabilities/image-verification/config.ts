import { DEFAULT_VERIFY_DEADLINE_MS } from "./verify-image";

/** Image verification settings of the admission webhook (frozen). */
export interface ImageVerificationConfig {
  /**
   * Registries spoken to over plain http, as `host:port` or `host:*` (any port): for loopback test
   * registries. Every other registry is https only.
   */
  plainHttpRegistries: readonly string[];
  /** Bound on one image's registry work (ms), under the webhook's 10 s timeout (mutate and validate both run). */
  deadlineMs: number;
  /** A mounted Docker config file with registry credentials (registry-auth.ts), if any. */
  registryAuthFile?: string;
}

/**
 * Reads `KARS_IMAGE_PLAIN_HTTP_REGISTRIES` (comma-separated `host:port` or `host:*`),
 * `KARS_IMAGE_VERIFY_DEADLINE_MS` (100..4500) and `KARS_IMAGE_REGISTRY_AUTH_FILE` (an absolute path
 * to a mounted Docker config file: the `.dockerconfigjson` of a pull Secret). Throws naming the variable on a bad value (the
 * controller does not start with a configuration it cannot honour).
 */
export function parseImageVerificationConfig(env: Record<string, string | undefined>): ImageVerificationConfig {
  const plain = (env.KARS_IMAGE_PLAIN_HTTP_REGISTRIES ?? "").split(",").map(s => s.trim()).filter(Boolean);
  for (const p of plain) {
    if (!/^[A-Za-z0-9.-]+:(\d{1,5}|\*)$/.test(p)) throw new Error(`KARS_IMAGE_PLAIN_HTTP_REGISTRIES: ${JSON.stringify(p)} is not host:port or host:*`);
  }
  const raw = env.KARS_IMAGE_VERIFY_DEADLINE_MS;
  const deadlineMs = raw === undefined ? DEFAULT_VERIFY_DEADLINE_MS : Number(raw);
  if (!Number.isInteger(deadlineMs) || deadlineMs < 100 || deadlineMs > 4500) throw new Error(`KARS_IMAGE_VERIFY_DEADLINE_MS: must be an integer from 100 to 4500, got ${JSON.stringify(raw)}`);
  const authFile = env.KARS_IMAGE_REGISTRY_AUTH_FILE?.trim();
  if (authFile !== undefined && !authFile.startsWith("/")) throw new Error(`KARS_IMAGE_REGISTRY_AUTH_FILE: must be an absolute path, got ${JSON.stringify(authFile)}`);
  return Object.freeze({ plainHttpRegistries: Object.freeze(plain), deadlineMs, ...(authFile ? { registryAuthFile: authFile } : {}) });
}

/** Whether `registry` (host:port) is one of `entries` (host:port, or host:* for any port). */
export function isPlainHttpRegistry(registry: string, entries: readonly string[]): boolean {
  return entries.some(e => e === registry || (e.endsWith(":*") && registry.startsWith(e.slice(0, -1)) && /^\d{1,5}$/.test(registry.slice(e.length - 1))));
}
