/**
 * `npm run bench:egress` (DESIGN §8 "egress CONNECT ≥ Squid and smokescreen req/s on the same box;
 * blocklist 350k domains, lookup < 1 µs, < 100 MiB"). Ends with:
 *   BENCH egress connect_rps=… squid_rps=… smokescreen_rps=… ratio=… target>=1 pass|fail
 *   BENCH egress connect_p99_ms=… squid_p99_ms=… smokescreen_p99_ms=… (information)
 *   BENCH egress connect_cpu_ms_per_1k=… squid_cpu_ms_per_1k=… smokescreen_cpu_ms_per_1k=… (information)
 *   BENCH egress connect_user_us=… connect_sys_us=… squid_user_us=… … (information: CPU µs per tunnel in
 *     the proxy's own code vs in the kernel, which shows where a gap between the proxies is)
 *   BENCH egress peak_rss_mib=… squid_peak_rss_mib=… smokescreen_peak_rss_mib=… (information)
 *   BENCH egress blocklist_lookup_ns=… target<1000 pass|fail
 *   BENCH egress blocklist_rss_mib=… target<100 pass|fail
 *   BENCH egress blocklist_load_ms=… (information)
 *
 * Setup (needs root, like the egress integration tests): one network namespace `kars-b-<id>` whose
 * loopback interface also holds 198.20.0.10 (public to kars' classifier, see
 * tests/integration/egress-support/testbed.ts; it never leaves the namespace) where a tiny upstream
 * listens on :443, and /etc/netns/<ns>/hosts mapping allowed.test to it. kars (the router image's bundle,
 * flags and environment, whose egress proxy listens on 127.0.0.1:8444, auditing every decision as it does in a
 * pod: one record each up to 20 a second, then counted per host and port, router/src/audit/audit-throttle.ts),
 * Squid (127.0.0.1:3128, Debian package, installed if missing) and smokescreen (127.0.0.1:4750,
 * built from github.com/stripe/smokescreen v0.1.0 into ~/.cache/kars/bin, never the repository) run
 * there in turn with the same allowlist (allowed.test:443 only), and the same load generator drives
 * each. Everything shares the box's 2 cores, so absolute numbers vary with other load; the ratio is
 * what the target is about.
 * All three run at once (each stopped while another is measured); ROUNDS rounds give each the same SECONDS of load in turn and the medians are
 * reported, so that other load on the shared box hits all three alike. CPU ms per 1k tunnels is
 * reported for information.
 * Environment: BENCH_SECONDS (per proxy per round, default 5), BENCH_ROUNDS (default 5), BENCH_CONCURRENCY (default 32),
 * BENCH_DOMAINS (default 350000), BENCH_SKIP_PEERS=1 (kars and the blocklist only),
 * BENCH_AB_REF=<git revision>: also runs the router built from that revision of this repository as a
 * fourth contender (`kars-ref`, same flags, environment and load, interleaved in the same rounds) and
 * prints `BENCH egress ab connect_rps=… ref_rps=… ratio_vs_ref=…` — how a change moves kars' own rate,
 * which the shared box's noise hides when two separate runs are compared. BENCH_AB_REF_NODE_ARGS:
 * node flags for kars-ref alone (instead of BENCH_KARS_NODE_ARGS), to compare flags on one revision.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROUTER_ESBUILD_ARGS, ROUTER_IMAGE_ENV, ROUTER_NODE_FLAGS } from "../../router/src/image-runtime";
import { aloneSync } from "../alone";

const ROOT = path.resolve(__dirname, "../..");
const NODE = path.join(ROOT, "node_modules/.bin/node");
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const SKIP_PEERS = process.env.BENCH_SKIP_PEERS === "1";
const CACHE_BIN = path.join(os.homedir(), ".cache", "kars", "bin");
const SMOKESCREEN = path.join(CACHE_BIN, "smokescreen");
const UPSTREAM = "198.20.0.10";

const id = randomBytes(2).toString("hex");
const NS = `kars-b-${id}`;
const work = mkdtempSync(path.join(os.tmpdir(), "kars-b-egress-"));
const children: ChildProcess[] = [];

function log(msg: string): void {
  process.stderr.write(`bench:egress ${msg}\n`);
}

function sh(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; allowFail?: boolean } = {}): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, ...opts.env }, maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0 && !opts.allowFail) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

function inNs(args: string[]): string[] {
  return ["netns", "exec", NS, ...args];
}

function startInNs(args: string[], logFile: string): ChildProcess {
  // Output goes straight to a file: the load runs synchronously in this process, so a pipe would
  // not be drained and a chatty proxy (smokescreen logs every connection) would block on it.
  const fd = openSync(logFile, "a");
  const child = spawn("ip", inNs(args), { stdio: ["ignore", fd, fd], cwd: ROOT });
  closeSync(fd);
  children.push(child);
  return child;
}

async function waitForPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = spawnSync("ip", inNs([NODE, "-e", `const s=require("net").connect(${port},"${host}");s.on("connect",()=>process.exit(0));s.on("error",()=>process.exit(1))`])).status === 0;
    if (ok) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`nothing listening on ${host}:${port} in ${NS} after ${timeoutMs} ms`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}

interface LoadResult {
  tunnels: number;
  errors: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
}

function load(port: number, seconds: number): LoadResult {
  const out = sh("ip", inNs([NODE, "--require", "tsx/cjs", path.join(__dirname, "load.ts"), "127.0.0.1", String(port), String(seconds), String(CONCURRENCY)]));
  return JSON.parse(out.trim().split("\n").pop() ?? "{}") as LoadResult;
}

function ensureSquid(): boolean {
  if (spawnSync("sh", ["-c", "command -v squid"]).status === 0) return true;
  log("installing squid (Debian package)");
  const r = spawnSync("sh", ["-c", "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends squid || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends squid)"], { stdio: "inherit" });
  return r.status === 0;
}

function ensureSmokescreen(): boolean {
  if (existsSync(SMOKESCREEN)) return true;
  log("building smokescreen v0.1.0 from its Go module into ~/.cache/kars/bin");
  mkdirSync(CACHE_BIN, { recursive: true });
  const r = spawnSync("go", ["install", "github.com/stripe/smokescreen@v0.1.0"], { stdio: "inherit", env: { ...process.env, GOBIN: CACHE_BIN, GOFLAGS: "-mod=mod" } });
  return r.status === 0 && existsSync(SMOKESCREEN);
}

function setupNamespace(): void {
  sh("ip", ["netns", "add", NS]);
  sh("ip", ["-n", NS, "link", "set", "lo", "up"]);
  sh("ip", ["-n", NS, "addr", "add", `${UPSTREAM}/32`, "dev", "lo"]);
  mkdirSync(`/etc/netns/${NS}`, { recursive: true });
  writeFileSync(`/etc/netns/${NS}/hosts`, `127.0.0.1 localhost\n${UPSTREAM} allowed.test\n`);
  writeFileSync(`/etc/netns/${NS}/resolv.conf`, "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
}

/** A proxy under test: where it listens and its process (for CPU accounting). */
interface Contender {
  name: "kars" | "kars-ref" | "squid" | "smokescreen";
  port: number;
  child: ChildProcess;
}

/**
 * The source tree of BENCH_AB_REF: a detached git worktree of that revision in the work directory,
 * sharing this checkout's node_modules. Throws when the revision does not exist.
 */
function refTree(rev: string): string {
  const tree = path.join(work, "ref-tree");
  sh("git", ["-C", ROOT, "worktree", "add", "--detach", tree, rev]);
  symlinkSync(path.join(ROOT, "node_modules"), path.join(tree, "node_modules"));
  return tree;
}

async function startKars(name: "kars" | "kars-ref" = "kars", sourceRoot = ROOT, portBase = 8443): Promise<Contender> {
  // kars runs as it ships: the router image's bundle, node flags and environment (router/src/image-runtime.ts,
  // as bench:router does), so the proxy pays for what production does per decision — the info log line
  // and the hash-chained audit record — and nothing the image does not load (tsx).
  const bundle = path.join(work, `${name}-router.js`);
  const esbuild = spawnSync(path.join(ROOT, "node_modules/.bin/esbuild"), [path.join(sourceRoot, "router/src/main.ts"), ...ROUTER_ESBUILD_ARGS, `--outfile=${bundle}`, "--log-level=error"], { encoding: "utf8" });
  if (esbuild.status !== 0) throw new Error(`esbuild failed: ${esbuild.stderr}`);
  const configDir = path.join(work, `${name}-config`);
  mkdirSync(configDir);
  // an inference upstream is required by the profile's schema; the bench never calls it
  writeFileSync(path.join(configDir, "upstream-key"), "sk-bench-unused\n");
  writeFileSync(
    path.join(configDir, "profile.json"),
    JSON.stringify({
      sandbox: "bench",
      tenant: "bench",
      egressMode: "Strict",
      allowedEndpoints: [{ host: "allowed.test", port: 443 }],
      inferencePolicy: {},
      upstreams: [{ name: "unused", provider: "openai-compatible", endpoint: "http://127.0.0.1:9/v1", apiKeyFile: path.join(configDir, "upstream-key") }],
      listen: { api: `127.0.0.1:${portBase}`, egress: `127.0.0.1:${portBase + 1}`, ops: `127.0.0.1:${portBase + 647}` },
    }),
  );
  const nodeArgs = ((name === "kars-ref" ? process.env.BENCH_AB_REF_NODE_ARGS : undefined) ?? process.env.BENCH_KARS_NODE_ARGS ?? "").split(" ").filter(Boolean); // e.g. --cpu-prof
  const env = Object.entries(ROUTER_IMAGE_ENV).map(([k, v]) => `${k}=${v}`);
  // stdout (one JSON line per decision at info) goes to a file, as a container runtime collects it
  const child = startInNs(["env", ...env, NODE, ...ROUTER_NODE_FLAGS, ...nodeArgs, bundle, "--config-dir", configDir, "--state-dir", path.join(work, `${name}-state`)], path.join(work, `${name}.log`));
  await waitForPort("127.0.0.1", portBase + 1, 30_000);
  return { name, port: portBase + 1, child };
}

async function startSquid(): Promise<Contender | undefined> {
  if (!ensureSquid()) return undefined;
  const dir = path.join(work, "squid");
  mkdirSync(dir);
  chmodSync(dir, 0o777);
  const conf = path.join(dir, "squid.conf");
  writeFileSync(
    conf,
    [
      "http_port 127.0.0.1:3128",
      "acl allowed dstdomain allowed.test",
      "acl SSL_ports port 443",
      "acl CONNECT method CONNECT",
      "http_access deny CONNECT !SSL_ports",
      "http_access allow CONNECT allowed",
      "http_access deny all",
      "cache deny all",
      "workers 1",
      `pid_filename ${dir}/squid.pid`,
      `access_log stdio:${dir}/access.log`,
      `cache_log ${dir}/cache.log`,
      `coredump_dir ${dir}`,
      "shutdown_lifetime 1 seconds",
      "max_filedescriptors 16384",
      "",
    ].join("\n"),
  );
  const child = startInNs(["squid", "-N", "-f", conf], path.join(work, "squid.log"));
  await waitForPort("127.0.0.1", 3128, 30_000);
  return { name: "squid", port: 3128, child };
}

async function startSmokescreen(): Promise<Contender | undefined> {
  if (!ensureSmokescreen()) return undefined;
  const acl = path.join(work, "smokescreen-acl.yaml");
  writeFileSync(acl, ["---", "version: v1", "services: []", "default:", "  project: kars-bench", "  action: enforce", "  allowed_domains:", "    - allowed.test", ""].join("\n"));
  // No client certificates here: the ACL's default rule applies to every client (allow_missing_role).
  const config = path.join(work, "smokescreen.yaml");
  writeFileSync(config, ["ip: 127.0.0.1", "port: 4750", `acl_file: ${acl}`, "allow_missing_role: true", ""].join("\n"));
  const child = startInNs([SMOKESCREEN, "--config-file", config], path.join(work, "smokescreen.log"));
  await waitForPort("127.0.0.1", 4750, 30_000);
  return { name: "smokescreen", port: 4750, child };
}

/** CPU time of a process so far, in ms, user and system apart (Linux /proc; `ip netns exec` and `env` exec, so the pid is the proxy's). */
function cpuMs(pid: number | undefined): { user: number; sys: number } {
  if (!pid) return { user: NaN, sys: NaN };
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return { user: (Number(fields[11]) * 1000) / 100, sys: (Number(fields[12]) * 1000) / 100 }; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return { user: NaN, sys: NaN };
  }
}

/** Peak resident set size of a process so far (VmHWM), in MiB (Linux /proc). */
function peakRssMiB(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN;
  } catch {
    return NaN;
  }
}

/** Per-proxy summary: medians over the rounds. */
interface Summary {
  rps: number;
  p99Ms: number;
  errors: number;
  cpuMsPer1k: number;
  /** user and system CPU µs per tunnel (medians): where a proxy's cost is, in its own code or in the kernel */
  userUs: number;
  sysUs: number;
}

/**
 * Runs ROUNDS rounds; in each, every contender gets the same SECONDS of load in turn, so that
 * background load on the shared box hits them alike, alone (the others stopped meanwhile: see
 * bench/alone.ts). Reports medians.
 */
function race(contenders: Contender[]): Map<string, Summary> {
  for (const c of contenders) load(c.port, 1); // warm-up
  const runs = new Map<string, { rps: number; p99Ms: number; errors: number; cpu: number; user: number; sys: number }[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of contenders) {
      const cpu0 = cpuMs(c.child.pid);
      const r = aloneSync(contenders.filter((o) => o !== c).map((o) => o.child.pid), () => load(c.port, SECONDS));
      const cpu1 = cpuMs(c.child.pid);
      const user = cpu1.user - cpu0.user;
      const sys = cpu1.sys - cpu0.sys;
      log(`round ${round + 1} ${c.name}: ${JSON.stringify(r)} cpu_ms=${user + sys} (user ${user}, sys ${sys})`);
      const list = runs.get(c.name) ?? [];
      const perTunnel = (ms: number): number => (r.tunnels > 0 ? (ms / r.tunnels) * 1000 : NaN);
      list.push({ rps: r.rps, p99Ms: r.p99Ms, errors: r.errors, cpu: perTunnel(user + sys), user: perTunnel(user), sys: perTunnel(sys) });
      runs.set(c.name, list);
    }
  }
  const median = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
  };
  const out = new Map<string, Summary>();
  for (const [name, list] of runs) {
    out.set(name, {
      rps: median(list.map((x) => x.rps)),
      p99Ms: median(list.map((x) => x.p99Ms)),
      errors: list.reduce((n, x) => n + x.errors, 0),
      cpuMsPer1k: Math.round(median(list.map((x) => x.cpu))),
      userUs: Math.round(median(list.map((x) => x.user))),
      sysUs: Math.round(median(list.map((x) => x.sys))),
    });
  }
  return out;
}

function blocklistBench(): { domains: number; loadMs: number; rssMiB: number; heapMiB: number; lookupNs: number } {
  const out = sh(NODE, ["--require", "tsx/cjs", path.join(__dirname, "blocklist-bench.ts")]);
  return JSON.parse(out.trim().split("\n").pop() ?? "{}") as ReturnType<typeof blocklistBench>;
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) throw new Error("bench:egress needs root (network namespaces)");
  chmodSync(work, 0o755); // Squid drops to user proxy and must reach its log directory
  log("blocklist: generating, loading and probing");
  const bl = blocklistBench();
  log(`blocklist: ${JSON.stringify(bl)}`);

  setupNamespace();
  const upstream = startInNs([NODE, "--require", "tsx/cjs", path.join(__dirname, "upstream.ts"), UPSTREAM, "443"], path.join(work, "upstream.log"));
  await waitForPort(UPSTREAM, 443, 30_000);
  const contenders = [await startKars()];
  const abRef = process.env.BENCH_AB_REF;
  if (abRef) contenders.push(await startKars("kars-ref", refTree(abRef), 18443));
  if (!SKIP_PEERS) {
    const squidC = await startSquid();
    if (squidC) contenders.push(squidC);
    else log("squid unavailable");
    const smokeC = await startSmokescreen();
    if (smokeC) contenders.push(smokeC);
    else log("smokescreen unavailable");
  }
  log(`${ROUNDS} rounds of ${SECONDS}s per proxy at concurrency ${CONCURRENCY}: ${contenders.map((c) => c.name).join(", ")}`);
  const results = race(contenders);
  const rss = new Map(contenders.map((c) => [c.name, peakRssMiB(c.child.pid)]));
  for (const c of contenders) await stop(c.child);
  await stop(upstream);

  const kars = results.get("kars") as Summary;
  const squid = results.get("squid");
  const smoke = results.get("smokescreen");
  const peers = [squid?.rps, smoke?.rps].filter((x): x is number => typeof x === "number" && x > 0);
  const best = peers.length ? Math.max(...peers) : NaN;
  const ratio = Math.round((kars.rps / best) * 100) / 100;
  const connectPass = peers.length === 2 && kars.errors === 0 && ratio >= 1;
  const lines = [
    `BENCH egress connect_rps=${kars.rps} squid_rps=${squid?.rps ?? "n/a"} smokescreen_rps=${smoke?.rps ?? "n/a"} ratio=${Number.isFinite(ratio) ? ratio : "n/a"} target>=1 ${connectPass ? "pass" : "fail"}`,
    `BENCH egress connect_p99_ms=${kars.p99Ms} squid_p99_ms=${squid?.p99Ms ?? "n/a"} smokescreen_p99_ms=${smoke?.p99Ms ?? "n/a"} errors=${kars.errors}/${squid?.errors ?? "n/a"}/${smoke?.errors ?? "n/a"}`,
    `BENCH egress connect_cpu_ms_per_1k=${kars.cpuMsPer1k} squid_cpu_ms_per_1k=${squid?.cpuMsPer1k ?? "n/a"} smokescreen_cpu_ms_per_1k=${smoke?.cpuMsPer1k ?? "n/a"}`,
    `BENCH egress connect_user_us=${kars.userUs} connect_sys_us=${kars.sysUs} squid_user_us=${squid?.userUs ?? "n/a"} squid_sys_us=${squid?.sysUs ?? "n/a"} smokescreen_user_us=${smoke?.userUs ?? "n/a"} smokescreen_sys_us=${smoke?.sysUs ?? "n/a"}`,
    `BENCH egress peak_rss_mib=${rss.get("kars")} squid_peak_rss_mib=${rss.get("squid") ?? "n/a"} smokescreen_peak_rss_mib=${rss.get("smokescreen") ?? "n/a"} (kars: the whole router, no blocklist)`,
    `BENCH egress blocklist_lookup_ns=${bl.lookupNs} target<1000 ${bl.lookupNs < 1000 ? "pass" : "fail"}`,
    `BENCH egress blocklist_rss_mib=${bl.rssMiB} target<100 ${bl.rssMiB < 100 ? "pass" : "fail"}`,
    `BENCH egress blocklist_load_ms=${bl.loadMs} domains=${bl.domains} heap_mib=${bl.heapMiB}`,
  ];
  const ref = results.get("kars-ref");
  if (ref) {
    lines.push(
      `BENCH egress ab connect_rps=${kars.rps} ref_rps=${ref.rps} ratio_vs_ref=${Math.round((kars.rps / ref.rps) * 100) / 100} ` +
        `connect_user_us=${kars.userUs} ref_user_us=${ref.userUs} connect_sys_us=${kars.sysUs} ref_sys_us=${ref.sysUs} ref=${abRef}`,
    );
  }
  process.stdout.write(`${lines.join("\n")}\n`);
  return 0;
}

async function cleanup(): Promise<void> {
  await Promise.all(children.map((c) => stop(c)));
  spawnSync("ip", ["netns", "del", NS]);
  if (existsSync(path.join(work, "ref-tree"))) spawnSync("git", ["-C", ROOT, "worktree", "remove", "--force", path.join(work, "ref-tree")]);
  rmSync(`/etc/netns/${NS}`, { recursive: true, force: true });
  if (process.env.BENCH_KEEP_LOGS !== "1") rmSync(work, { recursive: true, force: true });
  else log(`logs kept in ${work}`);
}

main()
  .then(async (code) => {
    await cleanup();
    process.exit(code);
  })
  .catch(async (err: Error) => {
    log(`failed: ${err.stack ?? err.message}`);
    await cleanup();
    process.exit(1);
  });
