/**
 * `npm run bench:router` (DESIGN §8): the router's added latency against calling the upstream
 * directly, its throughput and RSS under load, beside LiteLLM proxy (PyPI) against the same loopback
 * upstream on the same box, each measured alone (the other's processes stopped meanwhile). Ends with
 * one `BENCH router …` line per target:
 *   overhead p50 < 0.5 ms, overhead p99 < 2 ms, throughput ≥ 5× LiteLLM's, RSS < 128 MiB under load.
 * LiteLLM is installed into a venv under ~/.cache/kars/ (never the repository); when that is not
 * possible the output says so and the router's own numbers are still printed.
 * Phases, in order: a short sequential warm-up; the cold latency (information: the first
 * BENCH_COLD_SEQ requests through the just-started router, interleaved with direct ones); the
 * throughput runs (router with its peak RSS, floor, LiteLLM, direct), which also bring each proxy to its
 * steady state; then the latency the targets are judged on, at that steady state, as a router that has
 * been serving for a while is. Measured before the JIT has settled (the router's first ~10k requests),
 * the p99 carries the compile jobs V8 runs on worker threads, which on a 2-core box delay every
 * process's wake-ups by milliseconds; the cold line shows that.
 * Environment: BENCH_SEQ (sequential requests per target, default 5000), BENCH_COLD_SEQ (default
 * 2000), BENCH_SECONDS (throughput run, default 8), BENCH_CONCURRENCY (default 32), BENCH_SKIP_LITELLM=1, BENCH_ROUTER_NODE_ARGS (extra node
 * flags for the router, after the image's: profiling, GC tracing), BENCH_LATENCIES_FILE (writes every
 * sequential latency, direct, through the router and through the floor proxy, in request order, as
 * JSON: for studying the tail).
 * The floor: a bare node:http + undici proxy (floor-proxy.ts) with the router's node flags, measured
 * interleaved with the router and the upstream. Its overhead is what any Node proxy in the router's
 * place adds on this box at this moment (the extra loopback hop and HTTP work); an information line
 * prints it beside the router's, so a p50 near the 0.5 ms line can be read against what the box allows.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { request } from "undici";
import { ROUTER_ESBUILD_ARGS, ROUTER_IMAGE_ENV, ROUTER_NODE_FLAGS } from "../../router/src/image-runtime";
import { alone } from "../alone";
import { cpuMs, rssMiB } from "../proc";
import { interleavedLatencies, quantile, sequentialLatencies, throughput } from "./measure";

const ROOT = path.resolve(__dirname, "../..");
const SEQ = Number(process.env.BENCH_SEQ ?? 5000);
const COLD_SEQ = Number(process.env.BENCH_COLD_SEQ ?? 2000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const CACHE = path.join(os.homedir(), ".cache", "kars");
const VENV = path.join(CACHE, "litellm-venv");
const children: ChildProcess[] = [];

function log(msg: string): void {
  process.stderr.write(`bench:router ${msg}\n`);
}

/** Spawns a process and resolves with the first stdout/stderr match of `ready`. */
function start(cmd: string, args: string[], env: NodeJS.ProcessEnv, ready: RegExp, timeoutMs: number): Promise<{ child: ChildProcess; match: RegExpMatchArray }> {
  const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cmd} not ready after ${timeoutMs} ms:\n${out.slice(-2000)}`)), timeoutMs);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = out.match(ready);
      if (m) {
        clearTimeout(timer);
        // from now on the output is only drained (as a container runtime would), not kept and searched
        child.stdout?.off("data", onData).resume();
        child.stderr?.off("data", onData).resume();
        resolve({ child, match: m });
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.on("exit", code => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited with ${code}:\n${out.slice(-2000)}`));
    });
  });
}

/** Runs `fn` while sampling the RSS of `pid` every 100 ms; returns fn's result and the peak. */
async function withPeakRss<T>(pid: number, fn: () => Promise<T>): Promise<[T, number]> {
  let peak = rssMiB(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 100);
  try {
    return [await fn(), Math.max(peak, rssMiB(pid))];
  } finally {
    clearInterval(timer);
  }
}

/** Ensures LiteLLM proxy is installed in the cache venv; returns its executable or why not. */
function ensureLiteLLM(): { bin: string } | { reason: string } {
  const bin = path.join(VENV, "bin", "litellm");
  if (fs.existsSync(bin)) return { bin };
  fs.mkdirSync(CACHE, { recursive: true });
  log(`installing litellm[proxy] into ${VENV} (first run only)`);
  const venv = spawnSync("python3", ["-m", "venv", VENV], { encoding: "utf8", timeout: 120_000 });
  if (venv.status !== 0) return { reason: `python3 -m venv failed: ${(venv.stderr || venv.error?.message || "").trim().split("\n").pop()}` };
  const pip = spawnSync(path.join(VENV, "bin", "pip"), ["install", "--quiet", "--disable-pip-version-check", "litellm[proxy]"], { encoding: "utf8", timeout: 420_000 });
  if (pip.status !== 0 || !fs.existsSync(bin)) return { reason: `pip install litellm[proxy] failed: ${(pip.stderr || pip.error?.message || "").trim().split("\n").pop()}` };
  return { bin };
}

/** LiteLLM proxy refuses to start without a master key; clients then send it as their bearer token. */
const LITELLM_MASTER_KEY = `sk-kars-bench-${Math.random().toString(16).slice(2)}`;

async function startLiteLLM(bin: string, upstream: string, dir: string): Promise<{ origin: string; pid: number }> {
  const config = path.join(dir, "litellm.yaml");
  fs.writeFileSync(
    config,
    [
      "model_list:",
      "  - model_name: bench-model",
      "    litellm_params:",
      "      model: openai/bench-model",
      `      api_base: ${upstream}/v1`,
      "      api_key: sk-bench",
      "general_settings:",
      `  master_key: ${LITELLM_MASTER_KEY}`,
      "litellm_settings:",
      "  telemetry: false",
      "  drop_params: true",
      "",
    ].join("\n"),
  );
  const port = 40000 + Math.floor(Math.random() * 20000);
  const child = spawn(bin, ["--config", config, "--host", "127.0.0.1", "--port", String(port), "--num_workers", "1"], {
    cwd: dir,
    env: { ...process.env, LITELLM_LOCAL_MODEL_COST_MAP: "True", LITELLM_TELEMETRY: "False", LITELLM_LOG: "ERROR", DO_NOT_TRACK: "1" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  children.push(child);
  let stderr = "";
  child.stderr?.on("data", d => (stderr = (stderr + d).slice(-4000)));
  const origin = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 240_000; // first start imports a lot of Python; slow on a busy 2-core box
  for (;;) {
    if (child.exitCode !== null) throw new Error(`litellm exited with ${child.exitCode}: ${stderr.trim().split("\n").slice(-3).join(" | ")}`);
    if (Date.now() > deadline) throw new Error("litellm not ready after 240 s");
    try {
      const res = await request(`${origin}/health/liveliness`);
      await res.body.text();
      if (res.statusCode === 200) break;
    } catch {
      // not listening yet
    }
    await new Promise(r => setTimeout(r, 500));
  }
  return { origin, pid: child.pid as number };
}

function fmt(n: number): string {
  return Number.isFinite(n) ? (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)) : "n/a";
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kars-bench-router-"));
  const node = process.execPath;
  const up = await start(node, ["-r", "tsx/cjs", path.join(__dirname, "upstream.ts")], {}, /LISTEN (\d+)/, 60_000);
  const upstream = `http://127.0.0.1:${up.match[1]}`;
  const fl = await start(node, [...ROUTER_NODE_FLAGS, "-r", "tsx/cjs", path.join(__dirname, "floor-proxy.ts"), upstream], { ...ROUTER_IMAGE_ENV }, /LISTEN (\d+)/, 60_000);
  const floor = `http://127.0.0.1:${fl.match[1]}`;

  const configDir = path.join(dir, "config");
  fs.mkdirSync(configDir);
  fs.writeFileSync(path.join(configDir, "key"), "sk-bench");
  fs.writeFileSync(
    path.join(configDir, "profile.json"),
    JSON.stringify({
      sandbox: "bench",
      tenant: "bench",
      egressMode: "Strict",
      allowedEndpoints: [],
      inferencePolicy: { tokenBudget: { perRequestTokens: 100000, monthlyTokens: 1_000_000_000_000 } },
      upstreams: [{ name: "bench-model", provider: "openai-compatible", endpoint: `${upstream}/v1`, apiKeyFile: "key" }],
      rateLimits: { global: { rps: 1e9, burst: 1e9 }, perAgent: { rps: 1e9, burst: 1e9 } },
      listen: { api: "127.0.0.1:0", egress: "127.0.0.1:0", ops: "127.0.0.1:0" },
    }),
  );
  // The router runs as in its image (router/Dockerfile): one esbuild bundle on Node 24, no tsx, built and
  // started with the image's flags and environment (router/src/image-runtime.ts: info logs included).
  const bundle = path.join(dir, "router.js");
  const esbuild = spawnSync(path.join(ROOT, "node_modules/.bin/esbuild"), [path.join(ROOT, "router/src/main.ts"), ...ROUTER_ESBUILD_ARGS, `--outfile=${bundle}`, "--log-level=error"], { encoding: "utf8" });
  if (esbuild.status !== 0) throw new Error(`esbuild failed: ${esbuild.stderr}`);
  const extraNodeArgs = (process.env.BENCH_ROUTER_NODE_ARGS ?? "").split(" ").filter(Boolean); // e.g. --cpu-prof, --inspect
  const routerProc = await start(node, [...ROUTER_NODE_FLAGS, ...extraNodeArgs, bundle, "--config-dir", configDir, "--state-dir", path.join(dir, "state")], { ...ROUTER_IMAGE_ENV }, /LISTEN api (\S+)/, 60_000);
  const router = `http://${routerProc.match[1]}`;
  const routerPid = routerProc.child.pid as number;
  log(`upstream ${upstream}, router ${router} (pid ${routerPid})`);

  let litellm: { origin: string; pid: number } | null = null;
  let litellmWhy = "";
  if (process.env.BENCH_SKIP_LITELLM === "1") litellmWhy = "skipped (BENCH_SKIP_LITELLM=1)";
  else {
    const lb = ensureLiteLLM();
    if ("reason" in lb) litellmWhy = lb.reason;
    else {
      try {
        litellm = await startLiteLLM(lb.bin, upstream, dir);
        log(`litellm ${litellm.origin} (pid ${litellm.pid})`);
      } catch (err) {
        litellmWhy = `LiteLLM did not start: ${(err as Error).message.split("\n")[0]}`;
      }
    }
  }
  if (!litellm) console.log(`BENCH router litellm unavailable: ${litellmWhy}`);

  const auth = { authorization: `Bearer ${LITELLM_MASTER_KEY}` };
  const litellmPid = litellm?.pid ?? null;
  log("warm-up");
  await sequentialLatencies(upstream, "/v1/chat/completions", 300);
  await sequentialLatencies(router, "/v1/chat/completions", 500);
  await sequentialLatencies(floor, "/v1/chat/completions", 300);
  if (litellm) await sequentialLatencies(litellm.origin, "/v1/chat/completions", 100, auth);

  // Just started, V8 has not compiled the router's hot path yet: measured for information (and each
  // contender alone on the box: LiteLLM stopped while the router is measured, and the other way round).
  log(`cold latency: ${COLD_SEQ} sequential requests per target, direct and through the just-started router interleaved`);
  const [coldBase, coldRouter] = await alone([litellmPid], () => interleavedLatencies([upstream, router], "/v1/chat/completions", COLD_SEQ));

  // The throughput runs come first: they bring each proxy to its steady state (optimised code; for the
  // router ~10k requests, during which compile jobs on V8's worker threads take CPU from every process
  // on the box), and the latency runs after them measure that state, as a long-running router is.
  log(`throughput: ${CONCURRENCY} concurrent for ${SECONDS}s per target`);
  const [routerTp, routerRss] = await alone([litellmPid], () => withPeakRss(routerPid, () => throughput(router, "/v1/chat/completions", CONCURRENCY, SECONDS * 1000)));
  const floorTp = await alone([litellmPid, routerPid], () => throughput(floor, "/v1/chat/completions", CONCURRENCY, SECONDS * 1000));
  const [litellmTp, litellmRss] = litellm ? await alone([routerPid], () => withPeakRss(litellm!.pid, () => throughput(litellm!.origin, "/v1/chat/completions", CONCURRENCY, SECONDS * 1000, auth))) : [{ rps: NaN, errors: 0 }, NaN];
  const directTp = await alone([litellmPid, routerPid], () => throughput(upstream, "/v1/chat/completions", CONCURRENCY, SECONDS * 1000));

  log(`latency: ${SEQ} sequential requests per target, direct, through the router and through the floor proxy interleaved`);
  const cpu0 = cpuMs(routerPid);
  const [base, viaRouter, viaFloor] = await alone([litellmPid], () => interleavedLatencies([upstream, router, floor], "/v1/chat/completions", SEQ));
  const cpu1 = cpuMs(routerPid); // less sensitive to a busy box than latency
  const routerUserUs = ((cpu1.user - cpu0.user) * 1000) / SEQ;
  const routerSystemUs = ((cpu1.system - cpu0.system) * 1000) / SEQ;
  const viaLitellm = litellm ? await alone([routerPid], () => sequentialLatencies(litellm!.origin, "/v1/chat/completions", Math.min(SEQ, 500), auth)) : [];
  if (process.env.BENCH_LATENCIES_FILE) fs.writeFileSync(process.env.BENCH_LATENCIES_FILE, JSON.stringify({ direct: base, router: viaRouter, floor: viaFloor, coldDirect: coldBase, coldRouter }));

  const o50 = quantile(viaRouter, 0.5) - quantile(base, 0.5);
  const o99 = quantile(viaRouter, 0.99) - quantile(base, 0.99);
  const c50 = quantile(coldRouter, 0.5) - quantile(coldBase, 0.5);
  const c99 = quantile(coldRouter, 0.99) - quantile(coldBase, 0.99);
  const f50 = quantile(viaFloor, 0.5) - quantile(base, 0.5);
  const f99 = quantile(viaFloor, 0.99) - quantile(base, 0.99);
  const l50 = litellm ? quantile(viaLitellm, 0.5) - quantile(base, 0.5) : NaN;
  const l99 = litellm ? quantile(viaLitellm, 0.99) - quantile(base, 0.99) : NaN;
  log(`direct p50=${fmt(quantile(base, 0.5))}ms p99=${fmt(quantile(base, 0.99))}ms rps=${fmt(directTp.rps)}; router p50=${fmt(quantile(viaRouter, 0.5))}ms p99=${fmt(quantile(viaRouter, 0.99))}ms rps=${fmt(routerTp.rps)} errors=${routerTp.errors} floor rps=${fmt(floorTp.rps)} errors=${floorTp.errors} cpu_per_request_us=${fmt(routerUserUs + routerSystemUs)} (user ${fmt(routerUserUs)}, system ${fmt(routerSystemUs)}); litellm errors=${litellmTp.errors}; load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} cores`);
  const verdict = (ok: boolean) => (ok ? "pass" : "fail");
  const ratio = (a: number, b: number) => fmt(a / b);
  console.log(`BENCH router overhead_p50_ms=${fmt(o50)} litellm_overhead_p50_ms=${fmt(l50)} ratio=${ratio(l50, o50)} target<0.5 ${verdict(o50 < 0.5)}`);
  console.log(`BENCH router overhead_p99_ms=${fmt(o99)} litellm_overhead_p99_ms=${fmt(l99)} ratio=${ratio(l99, o99)} target<2 ${verdict(o99 < 2)}`);
  console.log(`BENCH router throughput_rps=${fmt(routerTp.rps)} litellm_throughput_rps=${fmt(litellmTp.rps)} ratio=${ratio(routerTp.rps, litellmTp.rps)} target>=5 ${litellm ? verdict(routerTp.rps / litellmTp.rps >= 5) : "fail (no LiteLLM to compare)"}`);
  console.log(`BENCH router floor_overhead_p50_ms=${fmt(f50)} floor_overhead_p99_ms=${fmt(f99)} router_above_floor_p50_ms=${fmt(o50 - f50)} router_above_floor_p99_ms=${fmt(o99 - f99)} floor_throughput_rps=${fmt(floorTp.rps)} (information: the floor is a bare node:http + undici proxy, bench/router/floor-proxy.ts, measured interleaved with the router)`);
  console.log(`BENCH router cold_overhead_p50_ms=${fmt(c50)} cold_overhead_p99_ms=${fmt(c99)} cold_requests=${COLD_SEQ} (information: the first requests after the router started, before V8 has optimised its hot path; the targets above are measured at steady state)`);
  console.log(`BENCH router rss_mib=${fmt(routerRss)} litellm_rss_mib=${fmt(litellmRss)} target<128 ${verdict(routerRss < 128)}`);
  fs.rmSync(dir, { recursive: true, force: true });
}

function stopAll(): void {
  for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
}

main().then(
  () => {
    stopAll();
    setTimeout(() => process.exit(0), 500).unref();
  },
  err => {
    console.error(`bench:router failed: ${(err as Error).stack ?? err}`);
    stopAll();
    setTimeout(() => process.exit(1), 500).unref();
  },
);
