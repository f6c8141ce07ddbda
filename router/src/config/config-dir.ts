import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Logger } from "pino";
import { denyAllPolicyProfile, parsePolicyProfile, type PolicyProfile } from "../policy/policy-engine";
import type { RuntimeConfig } from "../inference/runtime-config";
import { parseProfile, type UpstreamSpec } from "./profile";

/** File names in the router configuration directory (DESIGN §6). */
export const CONFIG_FILES = { profile: "profile.json", toolPolicy: "toolpolicy.yaml", opsToken: "ops-token" } as const;

/** An upstream's API key (a credential) and the spec fields it was read for (ConfigDirectory.apiKey). */
interface ApiKey {
  value: string;
  endpoint: string;
  provider: string;
  apiKeyFile: string;
}

/** Readiness of the configuration: not ready while any file failed to load (reason per file). */
export interface ConfigReadiness {
  ready: boolean;
  reasons: string[];
}

/**
 * The router configuration directory (DESIGN §6, in a pod the projected `/etc/kars`), read at start
 * and re-read when a file changes (polled by content digest, which also catches the atomic `..data`
 * symlink swap of projected volumes). A file that fails to parse keeps the last good version and makes
 * readiness false with the reason, until a good version appears; a toolpolicy.yaml with no good
 * version yet denies every action meanwhile (fail closed). API key files named by upstreams are
 * read here too, so a rotated Secret is picked up the same way. Never logs file contents.
 */
export class ConfigDirectory {
  private current: RuntimeConfig;
  /** API keys by upstream name, with the spec fields they were read for. */
  private secrets = new Map<string, ApiKey>();
  private opsToken: string | null = null;
  private readonly digests = new Map<string, string>();
  private readonly problems = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  /** A toolpolicy.yaml (or its absence) has been applied at least once: a later bad version keeps it. */
  private toolPolicyApplied = false;

  /**
   * Loads the directory. Throws Error when profile.json is missing or invalid at start: a router
   * without a profile has nothing safe to do.
   */
  constructor(
    readonly dir: string,
    private readonly log: Pick<Logger, "info" | "warn" | "error">,
  ) {
    const text = this.read(CONFIG_FILES.profile);
    if (text === null) throw new Error(`${path.join(dir, CONFIG_FILES.profile)}: missing (required)`);
    const loaded = parseProfile(text);
    this.digests.set(CONFIG_FILES.profile, digestOf(text));
    this.current = { profile: loaded.profile, profileDigest: loaded.digest, toolPolicy: null };
    this.warnIfNoUpstream(loaded.profile);
    this.reload();
  }

  /** A profile without upstreams is valid (the router runs its egress proxy) but refuses all inference: say so. */
  private warnIfNoUpstream(profile: RuntimeConfig["profile"]): void {
    if (profile.upstreams.length > 0) return;
    this.log.warn({ file: CONFIG_FILES.profile }, "profile.json names no model upstream (the controller has no KARS_UPSTREAMS): every inference request is refused with 503 upstream_unavailable; egress is unaffected");
  }

  /** The current (last good) configuration. */
  config(): RuntimeConfig {
    return this.current;
  }

  /**
   * API key for an upstream (from its apiKeyFile), or undefined. The value is a credential. `upstream`
   * is the spec a request was admitted with: after a hot reload that moved that name to another
   * endpoint, provider or key file, the new key is not given for the old spec (undefined: the attempt
   * fails), so that a key is only ever sent to the endpoint it was configured for.
   */
  apiKey(upstream: Pick<UpstreamSpec, "name" | "endpoint" | "provider" | "apiKeyFile">): string | undefined {
    const s = this.secrets.get(upstream.name);
    if (!s || s.endpoint !== upstream.endpoint || s.provider !== upstream.provider || s.apiKeyFile !== upstream.apiKeyFile) return undefined;
    return s.value;
  }

  /** The ops bearer token, or null when no `ops-token` file exists (internal endpoints then refuse). */
  opsBearerToken(): string | null {
    return this.opsToken;
  }

  readiness(): ConfigReadiness {
    return { ready: this.problems.size === 0, reasons: [...this.problems.values()] };
  }

  /** Re-reads every file; applies the ones that changed and parse. Returns whether anything changed. */
  reload(): boolean {
    let changed = false;
    changed = this.apply(CONFIG_FILES.profile, text => {
      if (text === null) throw new Error("missing (required); keeping the last good profile");
      const loaded = parseProfile(text);
      this.current = { ...this.current, profile: loaded.profile, profileDigest: loaded.digest };
      this.warnIfNoUpstream(loaded.profile);
    }) || changed;
    changed = this.apply(CONFIG_FILES.toolPolicy, text => {
      const toolPolicy: PolicyProfile | null = text === null ? null : parsePolicyProfile(text);
      this.current = { ...this.current, toolPolicy };
      this.toolPolicyApplied = true;
    }) || changed;
    // a toolpolicy.yaml that has never parsed is not an empty policy: until one does, every action is denied
    const toolPolicyProblem = this.problems.get(CONFIG_FILES.toolPolicy);
    if (toolPolicyProblem !== undefined && !this.toolPolicyApplied && this.current.toolPolicy === null) {
      this.current = { ...this.current, toolPolicy: denyAllPolicyProfile() };
      changed = true;
    }
    try {
      const token = this.read(CONFIG_FILES.opsToken);
      this.opsToken = token === null || token.trim() === "" ? null : token.trim();
      this.problems.delete(CONFIG_FILES.opsToken);
    } catch (err) {
      this.opsToken = null; // fail closed: a token that cannot be read (a rotation gone wrong) opens nothing
      this.problems.set(CONFIG_FILES.opsToken, `${CONFIG_FILES.opsToken}: ${unreadable(err)}; internal endpoints disabled`);
    }
    this.loadSecrets();
    return changed;
  }

  /** Starts polling every `intervalMs` (unref'd: never keeps the process alive). */
  watch(intervalMs = 2000): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      try {
        this.reload();
      } catch (err) {
        this.log.error({ err }, "config reload failed");
      }
    }, intervalMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Reads `file` and, when its content changed, applies it with `use`. A file that cannot be read (a
   * directory, no permission, a dangling symlink) or that `use` refuses keeps the last good version
   * and is a problem (readiness false, one warning per new reason); reading the other files goes on.
   */
  private apply(file: string, use: (text: string | null) => void): boolean {
    let text: string | null;
    try {
      text = this.read(file);
    } catch (err) {
      const reason = `${file}: ${unreadable(err)}; keeping the last good version`;
      if (this.problems.get(file) !== reason) this.log.warn({ file, reason }, "config file unreadable; keeping the last good version");
      this.problems.set(file, reason);
      return false;
    }
    const digest = text === null ? "absent" : digestOf(text);
    if (this.digests.get(file) === digest) {
      // back to the version in use (e.g. a bad edit reverted): nothing to apply, but no longer a problem
      if (this.problems.delete(file)) this.log.info({ file }, "config file good again");
      return false;
    }
    try {
      use(text);
      this.digests.set(file, digest);
      if (this.problems.delete(file)) this.log.info({ file }, "config file good again");
      this.log.info({ file, digest }, "config file loaded");
      return true;
    } catch (err) {
      const reason = `${file}: ${(err as Error).message}`;
      if (this.problems.get(file) !== reason) this.log.warn({ file, reason }, "config file rejected; keeping the last good version");
      this.problems.set(file, reason);
      return false;
    }
  }

  private loadSecrets(): void {
    const secrets = new Map<string, ApiKey>();
    for (const u of this.current.profile.upstreams) {
      if (!u.apiKeyFile) continue;
      const key = `apiKeyFile:${u.name}`;
      const file = path.resolve(this.dir, u.apiKeyFile);
      try {
        const value = fs.readFileSync(file, "utf8").trim();
        if (value === "") throw new Error("empty");
        secrets.set(u.name, { value, endpoint: u.endpoint, provider: u.provider, apiKeyFile: u.apiKeyFile });
        this.problems.delete(key);
      } catch (err) {
        this.problems.set(key, `upstreams[${u.name}].apiKeyFile ${u.apiKeyFile}: unreadable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
    }
    for (const k of [...this.problems.keys()]) {
      if (k.startsWith("apiKeyFile:") && !this.current.profile.upstreams.some(u => `apiKeyFile:${u.name}` === k && u.apiKeyFile)) this.problems.delete(k);
    }
    this.secrets = secrets;
  }

  /** A file's text; null when there is no such file. Throws when it exists but cannot be read, a dangling symlink included (not "absent"). */
  private read(file: string): string | null {
    const at = path.join(this.dir, file);
    try {
      return fs.readFileSync(at, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      if (fs.lstatSync(at, { throwIfNoEntry: false })?.isSymbolicLink()) throw Object.assign(new Error("a symlink to nothing"), { code: "dangling symlink" });
      return null;
    }
  }
}

/** Why a file could not be read, for readiness and the log (its errno code; never its content). */
function unreadable(err: unknown): string {
  return `unreadable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
}

function digestOf(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
