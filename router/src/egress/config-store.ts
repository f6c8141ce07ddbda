// Holds the egress configuration read from the router configuration directory (DESIGN §6) and keeps
// it current: polls the files (projected ConfigMaps change by symlink swap, which file watchers miss),
// re-parses what changed, keeps the last good version of a file that fails to parse and reports why,
// and refreshes blocklist sources on their period with last-good fallback.

import { promises as fs } from "node:fs";
import path from "node:path";
import type { Logger } from "pino";
import { Blocklist, hashHosts, type BlocklistSourceInfo, type HashedHosts } from "./blocklist";
import { parseBlocklistText, unusableListReason, type ParsedBlocklist } from "./blocklist-parse";
import { fetchList, readCachedList, readSeedLists, seedSignature, type ListText } from "./blocklist-sources";
import {
  parseApprovals,
  parseBlocklistSources,
  parseEgressProfile,
  type BlocklistSources,
  type EgressApprovalGrant,
  type EgressProfile,
} from "./config";
import type { EgressPolicySnapshot } from "./decision";
import type { EgressMetrics } from "./metrics";

/** File names inside the configuration directory (DESIGN §6). */
export const CONFIG_FILES = {
  profile: "profile.json",
  approvals: "approvals.json",
  blocklistDir: "blocklist",
  blocklistSources: "blocklist-sources.json",
} as const;

/** Readiness as reported to /readyz: ready only with a good profile and no file being ignored. */
export interface EgressConfigStatus {
  ready: boolean;
  /** One line per problem, e.g. `profile.json: egressMode: must be "Strict" or "Learn", found "x"`. */
  reasons: string[];
}

interface FileState<T> {
  value: T | undefined;
  signature: string | undefined;
  error: string | undefined;
}

/** Options of {@link EgressConfigStore}. */
export interface EgressConfigStoreOptions {
  configDir: string;
  stateDir: string;
  logger: Logger;
  metrics: EgressMetrics;
  /** Poll period in ms (default 1000). */
  reloadIntervalMs?: number;
  now?: () => number;
}

/** The live egress configuration. Create, `await start()`, read `snapshot()`, `stop()` at the end. */
export class EgressConfigStore {
  private profile: FileState<EgressProfile> = { value: undefined, signature: undefined, error: undefined };
  private approvals: FileState<readonly EgressApprovalGrant[]> = { value: [], signature: undefined, error: undefined };
  private sources: FileState<BlocklistSources> = { value: undefined, signature: undefined, error: undefined };
  private seedSig: string | undefined;
  private seedLists: HashedHosts[] = [];
  private seedInfo: BlocklistSourceInfo[] = [];
  // Lists are kept fingerprinted (no strings), so a rebuild after one source changes is cheap.
  private readonly remote = new Map<string, { hashed: HashedHosts; info: BlocklistSourceInfo; fetchedAt: number }>();
  private blocklistError: string | undefined;
  /** The seed lists have been read once: until then a decision has no blocklist to apply. */
  private seedsLoaded = false;
  private blocklist = Blocklist.empty();
  private pollTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private polling: Promise<void> = Promise.resolve();
  private readonly startedAt: number;
  private readonly now: () => number;

  constructor(private readonly opts: EgressConfigStoreOptions) {
    this.now = opts.now ?? Date.now;
    this.startedAt = this.now();
  }

  private get cacheDir(): string {
    return path.join(this.opts.stateDir, "blocklist-cache");
  }

  /** Loads everything once (including a first fetch of blocklist sources), then starts polling. */
  async start(): Promise<void> {
    await this.poll(); // the first poll sees blocklist-sources.json as changed, so it also fetches
    const interval = this.opts.reloadIntervalMs ?? 1000;
    this.pollTimer = setInterval(() => {
      this.polling = this.polling.then(() => this.poll()).catch((err) => this.opts.logger.error({ err }, "egress config poll failed"));
    }, interval);
    this.pollTimer.unref();
  }

  /** Stops polling and refreshing; waits for a poll in progress. */
  async stop(): Promise<void> {
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.pollTimer = undefined;
    this.refreshTimer = undefined;
    await this.polling;
  }

  /**
   * The configuration a decision should use now. While the seed lists of `blocklist/` have never been
   * read (an I/O error at start), it has no profile, so every decision is `no_config`: fail closed, as
   * an unread blocklist is not an empty one (a later read error keeps the lists read before).
   */
  snapshot(): EgressPolicySnapshot {
    return { profile: this.seedsLoaded ? this.profile.value : undefined, approvals: this.approvals.value ?? [], blocklist: this.blocklist };
  }

  /** Readiness and the reasons it is not ready. */
  status(): EgressConfigStatus {
    const reasons: string[] = [];
    for (const e of [this.profile.error, this.approvals.error, this.sources.error, this.blocklistError]) if (e) reasons.push(e);
    if (!this.profile.value && !this.profile.error) reasons.push(`${CONFIG_FILES.profile}: not loaded`);
    return { ready: reasons.length === 0 && this.profile.value !== undefined, reasons };
  }

  /** Seconds since the oldest configured source was last fetched (or since start if never); 0 without sources. */
  stalenessSeconds(): number {
    const urls = this.sources.value?.sources ?? [];
    if (urls.length === 0) return 0;
    let oldest = Infinity;
    for (const { url } of urls) oldest = Math.min(oldest, this.remote.get(url)?.fetchedAt ?? this.startedAt);
    return Math.max(0, (this.now() - oldest) / 1000);
  }

  /** Re-reads changed files now (also runs on the poll timer). */
  async poll(): Promise<void> {
    const dir = this.opts.configDir;
    await this.reloadJson(CONFIG_FILES.profile, this.profile, parseEgressProfile, true);
    await this.reloadJson(CONFIG_FILES.approvals, this.approvals, parseApprovals, false, []);
    const sourcesChanged = await this.reloadJson(CONFIG_FILES.blocklistSources, this.sources, parseBlocklistSources, false);
    const seedDir = path.join(dir, CONFIG_FILES.blocklistDir);
    const sig = await seedSignature(seedDir);
    if (sig !== this.seedSig) {
      try {
        const lists = await readSeedLists(seedDir);
        const parsed = lists.map((l) => parseBlocklistText(l.text));
        parsed.forEach((p, i) => {
          const why = unusableListReason(p);
          if (why) throw new Error(`${path.basename(lists[i].source)}: ${why}`);
        });
        this.seedLists = parsed.map(hashHosts);
        this.seedInfo = lists.map((l, i) => info(l, parsed[i]));
        this.seedSig = sig;
        this.blocklistError = undefined;
        this.seedsLoaded = true;
        // in force at once; its log line waits for the sources' refresh below, which rebuilds it again
        this.rebuildBlocklist(!sourcesChanged);
      } catch (err) {
        this.blocklistError = `${CONFIG_FILES.blocklistDir}/: ${(err as Error).message} (keeping the previous lists)`;
        this.opts.logger.warn({ err }, "egress blocklist seed read failed");
      }
    }
    if (sourcesChanged) await this.refreshSources();
  }

  /** Reloads one JSON file if its bytes changed; returns true when a new value was taken. */
  private async reloadJson<T>(
    file: string,
    state: FileState<T>,
    parse: (text: string, file: string) => T,
    required: boolean,
    absentValue?: T,
  ): Promise<boolean> {
    const { metrics, logger } = this.opts;
    let text: string | undefined;
    try {
      text = await fs.readFile(path.join(this.opts.configDir, file), "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT") {
        state.signature = undefined; // retry on the next poll
        state.error = `${file}: unreadable (${code ?? "error"})${state.value !== undefined ? " (keeping the last good version)" : ""}`;
        metrics.configValid.set({ file }, 0);
        return false;
      }
    }
    const signature = text ?? "\u0000absent";
    if (signature === state.signature) return false;
    state.signature = signature;
    if (text === undefined) {
      if (required) {
        state.error = `${file}: missing${state.value ? " (keeping the last good version)" : ""}`;
        metrics.configValid.set({ file }, 0);
        logger.error({ file }, "egress config file missing");
        return false;
      }
      state.value = absentValue;
      state.error = undefined;
      metrics.configValid.set({ file }, 1);
      return true;
    }
    try {
      state.value = parse(text, file);
      state.error = undefined;
      metrics.configReloads.inc({ file, result: "ok" });
      metrics.configValid.set({ file }, 1);
      logger.info({ file }, "egress config loaded");
      return true;
    } catch (err) {
      state.error = `${(err as Error).message}${state.value !== undefined ? " (keeping the last good version)" : ""}`;
      metrics.configReloads.inc({ file, result: "error" });
      metrics.configValid.set({ file }, 0);
      logger.error({ file, reason: state.error }, "egress config file rejected");
      return false;
    }
  }

  /** Fetches every configured source now, keeping last good copies; reschedules itself. */
  async refreshSources(): Promise<void> {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    const cfg = this.sources.value;
    const urls = new Set((cfg?.sources ?? []).map((s) => s.url));
    for (const url of [...this.remote.keys()]) if (!urls.has(url)) this.remote.delete(url);
    for (const url of urls) {
      let list: ListText | undefined;
      try {
        list = await fetchList(url, this.cacheDir, this.now(), undefined, (text) => {
          const why = unusableListReason(parseBlocklistText(text));
          if (why) throw new Error(why);
        });
        this.opts.metrics.blocklistRefreshes.inc({ result: "ok" });
      } catch (err) {
        this.opts.metrics.blocklistRefreshes.inc({ result: "error" });
        this.opts.logger.warn({ source: url, err: (err as Error).message }, "egress blocklist refresh failed; keeping the last good copy");
        if (!this.remote.has(url)) list = await readCachedList(this.cacheDir, url);
      }
      if (list) {
        const parsed = parseBlocklistText(list.text);
        this.remote.set(url, { hashed: hashHosts(parsed), info: info(list, parsed), fetchedAt: list.fetchedAt ?? this.now() });
      }
    }
    this.rebuildBlocklist();
    if (cfg && cfg.sources.length > 0) {
      this.refreshTimer = setTimeout(() => {
        this.polling = this.polling.then(() => this.refreshSources()).catch((err) => this.opts.logger.error({ err }, "egress blocklist refresh failed"));
      }, cfg.periodSeconds * 1000);
      this.refreshTimer.unref();
    }
  }

  /** Makes the blocklist from the seed and remote lists, in force at once; `log`: say so (one line per change). */
  private rebuildBlocklist(log = true): void {
    const remote = [...this.remote.values()];
    const lists = [...this.seedLists, ...remote.map((r) => r.hashed)];
    const infos = [...this.seedInfo, ...remote.map((r) => r.info)];
    this.blocklist = new Blocklist(lists, infos);
    const unparsed = infos.reduce((n, l) => n + l.unparsedLines, 0);
    this.opts.metrics.blocklistEntries.set(this.blocklist.size);
    this.opts.metrics.blocklistUnparsedLines.set(unparsed);
    if (log) this.opts.logger.info({ entries: this.blocklist.size, unparsedLines: unparsed, lists: lists.length }, "egress blocklist loaded");
  }
}

function info(list: ListText, parsed: ParsedBlocklist): BlocklistSourceInfo {
  return { source: list.source, entries: parsed.exact.length + parsed.wildcard.length, unparsedLines: parsed.unparsedLines, header: parsed.header };
}
