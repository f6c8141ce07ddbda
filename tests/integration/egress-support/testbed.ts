// A real-kernel testbed for the egress specs: two network namespaces joined by a veth pair.
//
//   kars-t-pod-<id>  the sandbox pod: egress-guard rules, the proxy as UID 1001, probes as UID 1000
//        198.20.0.2/24, 2001:db9::2/64   default routes → the "internet" namespace
//   kars-t-net-<id>  the "internet": HTTP/HTTPS servers, dnsmasq (DNS for the *.test names below),
//                    a "private" host 10.99.0.10 and a "metadata" host 169.254.169.254
//
// Address choice: the egress classifier refuses every RFC 6890 special-purpose block, including the
// documentation (192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32) and benchmarking
// (198.18.0.0/15) ranges, so the stand-in "public" hosts use 198.20.0.0/24 (just past the
// benchmarking block) and 2001:db9::/32 (just past the documentation block): public to the
// classifier, documentation-looking to a reader. They exist only inside these namespaces; nothing is
// routed out of them and the root namespace is never touched except to create/delete the namespaces.
// Every name and interface starts with kars-t- / kt so a crashed run can be cleaned up by hand.

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/** The repository root. */
export const REPO = path.resolve(__dirname, "../../..");
const NODE = path.join(REPO, "node_modules/.bin/node");
const TSX = path.join(REPO, "node_modules/tsx/dist/cli.mjs");
const SUPPORT = __dirname;

/** The agent container's UID (DESIGN §2). */
export const AGENT_UID = 1000;
/** The router container's UID (DESIGN §2). */
export const ROUTER_UID = 1001;
/** The "cluster DNS service" the guard lets the agent reach. */
export const DNS_V4 = "198.20.0.53";
/** Its IPv6 address. */
export const DNS_V6 = "2001:db9::53";
/** A DNS server the agent must not reach (same dnsmasq, other address). */
export const OTHER_DNS_V4 = "198.20.0.54";
/** Its IPv6 counterpart. */
export const OTHER_DNS_V6 = "2001:db9::54";
/** allowed.test: HTTP :80/:8080, HTTPS :443. */
export const WEB_V4 = "198.20.0.10";
/** allowed.test over IPv6. */
export const WEB_V6 = "2001:db9::10";
/** Every other public test name. */
export const OTHER_V4 = "198.20.0.11";
/** other.test over IPv6. */
export const OTHER_V6 = "2001:db9::11";
/** reset.test: accepts TCP on :443 and resets the connection 100 ms later (a hostile destination). */
export const RESET_V4 = "198.20.0.12";
/** hostile.test: destinations that misbehave on purpose (see internet-servers.js `hostile:`). */
export const HOSTILE_V4 = "198.20.0.13";
/** blackhole.test: every packet to it is dropped, so connecting to it never completes. */
export const BLACKHOLE_V4 = "198.20.0.14";
/** Loopback port in the pod namespace where the test proxy serves its metrics (run-proxy.ts). */
export const METRICS_PORT = 9464;
/** A private host in the internet namespace (DNS rebinding target). */
export const PRIVATE_V4 = "10.99.0.10";
/** The cloud metadata address, served in the internet namespace. */
export const METADATA_V4 = "169.254.169.254";

/** DNS answers served by dnsmasq in the internet namespace. */
const HOST_RECORDS: Record<string, string[]> = {
  "allowed.test": [WEB_V4, WEB_V6],
  "other.test": [OTHER_V4, OTHER_V6],
  "approved.test": [OTHER_V4],
  "blocked.test": [OTHER_V4],
  "ads.blocked.test": [OTHER_V4],
  "exact.test": [OTHER_V4],
  "sub.exact.test": [OTHER_V4],
  "refreshed.test": [OTHER_V4],
  "v6only.test": [WEB_V6],
  "reset.test": [RESET_V4],
  "hostile.test": [HOSTILE_V4],
  "blackhole.test": [BLACKHOLE_V4],
  "rebind.test": [PRIVATE_V4],
  "meta.test": [METADATA_V4],
  "mixed.test": [WEB_V4, PRIVATE_V4],
  "loop.test": ["127.0.0.1"],
  "loop6.test": ["::1"],
  "ula.test": ["fd00::10"],
};

/** Result of running a command. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command (as root in the root namespace unless the args say otherwise); never rejects. */
export function run(cmd: string, args: string[], timeoutMs = 20_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

async function must(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Throws a clear error when this machine cannot run the kernel tests (not root, no netns/iptables). */
export async function requireKernelFacilities(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("egress kernel tests need root (network namespaces, iptables); run them as root");
  for (const tool of ["ip", "iptables", "ip6tables", "dnsmasq", "setpriv", "openssl"]) {
    const r = await run("sh", ["-c", `command -v ${tool}`]);
    if (r.code !== 0) throw new Error(`egress kernel tests need '${tool}'; run .ci/deps.d/egress.sh`);
  }
  const probe = `kars-t-chk-${randomBytes(2).toString("hex")}`;
  const add = await run("ip", ["netns", "add", probe]);
  if (add.code !== 0) throw new Error(`egress kernel tests: cannot create a network namespace: ${add.stderr.trim()}`);
  try {
    const ipt = await run("ip", ["netns", "exec", probe, "iptables", "-t", "nat", "-A", "OUTPUT", "-m", "owner", "--uid-owner", "1000", "-p", "tcp", "-j", "REDIRECT", "--to-ports", "1"]);
    if (ipt.code !== 0) throw new Error(`egress kernel tests: iptables nat/owner/REDIRECT unavailable: ${ipt.stderr.trim()}`);
    const ipt6 = await run("ip", ["netns", "exec", probe, "ip6tables", "-t", "nat", "-A", "OUTPUT", "-m", "owner", "--uid-owner", "1000", "-p", "tcp", "-j", "REDIRECT", "--to-ports", "1"]);
    if (ipt6.code !== 0) throw new Error(`egress kernel tests: ip6tables nat/owner/REDIRECT unavailable: ${ipt6.stderr.trim()}`);
  } finally {
    await run("ip", ["netns", "del", probe]);
  }
}

/** Profile/approvals written into the proxy's configuration directory. */
export interface TestConfig {
  egressMode: "Strict" | "Learn";
  allowedEndpoints: { host: string; port: number }[];
  approvals?: { name: string; hosts: { host: string; port: number }[]; expiresAt: string }[];
  blocklist?: Record<string, string>;
  blocklistSources?: unknown;
  /** profile.json's kars extension; absent = the mode's default (Refuse in Strict). */
  encryptedClientHello?: "Refuse" | "Allow";
}

/** The two namespaces, their servers, and the proxy. */
export class EgressTestbed {
  readonly id = randomBytes(2).toString("hex");
  readonly pod = `kars-t-pod-${this.id}`;
  readonly net = `kars-t-net-${this.id}`;
  readonly dir = mkdtempSync(path.join(os.tmpdir(), "kars-t-egress-"));
  readonly configDir = path.join(this.dir, "config");
  readonly stateDir = path.join(this.dir, "state");
  private readonly children: ChildProcess[] = [];
  private proxy: ChildProcess | undefined;
  readonly proxyLog = path.join(this.dir, "proxy.log");
  proxyAddress = "";

  /** Creates namespaces, links, addresses, routes, DNS and the internet servers. */
  async setup(): Promise<void> {
    chmodSync(this.dir, 0o755);
    mkdirSync(this.configDir, { mode: 0o755 });
    mkdirSync(this.stateDir, { mode: 0o755 });
    chownSync(this.stateDir, ROUTER_UID, ROUTER_UID);
    const vp = `kt${this.id}p`;
    const vn = `kt${this.id}n`;
    await must("ip", ["netns", "add", this.pod]);
    await must("ip", ["netns", "add", this.net]);
    const inPod = (...args: string[]): Promise<string> => must("ip", ["netns", "exec", this.pod, ...args]);
    const inNet = (...args: string[]): Promise<string> => must("ip", ["netns", "exec", this.net, ...args]);
    for (const ns of [this.pod, this.net]) {
      await must("ip", ["netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]);
      await must("ip", ["-n", ns, "link", "set", "lo", "up"]);
    }
    await must("ip", ["link", "add", vp, "netns", this.pod, "type", "veth", "peer", "name", vn, "netns", this.net]);
    await inPod("ip", "addr", "add", "198.20.0.2/24", "dev", vp);
    await inPod("ip", "-6", "addr", "add", "2001:db9::2/64", "dev", vp, "nodad");
    await inPod("ip", "link", "set", vp, "up");
    await inPod("ip", "route", "add", "default", "via", "198.20.0.1");
    await inPod("ip", "-6", "route", "add", "default", "via", "2001:db9::1");
    for (const a of ["198.20.0.1/24", `${WEB_V4}/24`, `${OTHER_V4}/24`, `${RESET_V4}/24`, `${HOSTILE_V4}/24`, `${BLACKHOLE_V4}/24`, `${DNS_V4}/24`, `${OTHER_DNS_V4}/24`, `${PRIVATE_V4}/32`, `${METADATA_V4}/32`]) {
      await inNet("ip", "addr", "add", a, "dev", vn);
    }
    for (const a of ["2001:db9::1/64", `${WEB_V6}/64`, `${OTHER_V6}/64`, `${DNS_V6}/64`, `${OTHER_DNS_V6}/64`]) {
      await inNet("ip", "-6", "addr", "add", a, "dev", vn, "nodad");
    }
    await inNet("ip", "link", "set", vn, "up");
    await inNet("iptables", "-A", "INPUT", "-d", BLACKHOLE_V4, "-j", "DROP");

    // The pod's resolver: `ip netns exec` bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf.
    mkdirSync(`/etc/netns/${this.pod}`, { recursive: true });
    writeFileSync(`/etc/netns/${this.pod}/resolv.conf`, `nameserver ${DNS_V4}\nnameserver ${DNS_V6}\noptions timeout:1 attempts:2\n`);

    const cert = path.join(this.dir, "cert.pem");
    const key = path.join(this.dir, "key.pem");
    await must("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
      "-subj", "/CN=kars-t", "-addext", "subjectAltName=DNS:*.test,DNS:allowed.test", "-keyout", key, "-out", cert,
    ]);
    const dnsArgs = [
      "netns", "exec", this.net, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
      "--bind-interfaces", `--listen-address=${DNS_V4},${OTHER_DNS_V4},${DNS_V6},${OTHER_DNS_V6}`, "--port=53",
      `--pid-file=${path.join(this.dir, "dnsmasq.pid")}`, "--user=root", "--log-facility=-",
      ...Object.entries(HOST_RECORDS).map(([name, addrs]) => `--host-record=${name},${addrs.join(",")}`),
    ];
    this.children.push(spawn("ip", dnsArgs, { stdio: "ignore" }));
    const servers = spawn("ip", ["netns", "exec", this.net, NODE, path.join(SUPPORT, "internet-servers.js"), cert, key,
      WEB_V4, OTHER_V4, PRIVATE_V4, METADATA_V4, WEB_V6, OTHER_V6, `reset:${RESET_V4}`, `hostile:${HOSTILE_V4}`], { stdio: ["ignore", "pipe", "inherit"] });
    this.children.push(servers);
    await waitForLine(servers, "READY", 15_000);
    await this.waitForDns();
  }

  private async waitForDns(): Promise<void> {
    for (let i = 0; i < 50; i++) {
      const r = await this.probe(0, "dns", DNS_V4, "allowed.test");
      if (r.ok) return;
      await sleep(100);
    }
    throw new Error("dnsmasq did not answer in the internet namespace");
  }

  /** Deletes everything setup created (namespaces, veths with them, resolv.conf, temp files, processes). */
  async teardown(): Promise<void> {
    await this.stopProxy();
    await Promise.all(this.children.map((c) => stopChild(c)));
    await run("ip", ["netns", "del", this.pod]);
    await run("ip", ["netns", "del", this.net]);
    rmSync(`/etc/netns/${this.pod}`, { recursive: true, force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Runs DESIGN §2's egress-guard script in the pod namespace (as root, like the init container). */
  guard(env: Record<string, string> = { KARS_DNS_SERVERS: `${DNS_V4} ${DNS_V6}` }): Promise<RunResult> {
    const assignments = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    return run("ip", ["netns", "exec", this.pod, "env", ...assignments, "sh", path.join(REPO, "router/egress-guard/egress-guard.sh")]);
  }

  /** Runs a command in the pod namespace as `uid` (0 = root). */
  asUser(uid: number, cmd: string, args: string[], timeoutMs?: number): Promise<RunResult> {
    const prefix = uid === 0 ? [] : ["setpriv", `--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "--"];
    return run("ip", ["netns", "exec", this.pod, ...prefix, cmd, ...args], timeoutMs);
  }

  /** Runs probe.js in the pod namespace as `uid`; returns its JSON line. */
  async probe(uid: number, ...args: string[]): Promise<Record<string, unknown>> {
    const r = await this.asUser(uid, NODE, [path.join(SUPPORT, "probe.js"), ...args]);
    try {
      return JSON.parse(r.stdout.trim().split("\n").pop() ?? "") as Record<string, unknown>;
    } catch {
      return { ok: false, error: `probe output unreadable: ${r.stdout} ${r.stderr}` };
    }
  }

  /**
   * Starts probe.js in the pod namespace as `uid` without waiting for it: `marked` resolves with the
   * result so far when it prints MARK (its `mark` step), `done` with its JSON line when it exits;
   * `kill()` ends it (its sockets close as a crashed client's would).
   */
  probeLive(uid: number, ...args: string[]): { marked: Promise<Record<string, unknown>>; done: Promise<Record<string, unknown>>; kill(): void } {
    const prefix = uid === 0 ? [] : ["setpriv", `--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "--"];
    const child = spawn("ip", ["netns", "exec", this.pod, ...prefix, NODE, path.join(SUPPORT, "probe.js"), ...args], { stdio: ["ignore", "pipe", "ignore"] });
    let stdout = "";
    child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
    const marked = waitForLine(child, "MARK", 30_000).then((line) => JSON.parse(line.slice("MARK".length).trim() || "{}") as Record<string, unknown>);
    marked.catch(() => undefined);
    const done = new Promise<Record<string, unknown>>((resolve) => {
      child.once("exit", () => {
        try {
          resolve(JSON.parse(stdout.trim().split("\n").pop() ?? "") as Record<string, unknown>);
        } catch {
          resolve({ ok: false, error: `probe output unreadable: ${stdout}` });
        }
      });
    });
    return { marked, done, kill: () => void child.kill("SIGKILL") };
  }

  /** The proxy's open tunnels and open sockets (kars_egress_active_tunnels / kars_egress_open_sockets). */
  async gauges(): Promise<{ active: number; sockets: number }> {
    const r = await this.metrics();
    return { active: r.active as number, sockets: r.sockets as number };
  }

  /** Relayed connections whose ClientHello carried Encrypted Client Hello (kars_egress_encrypted_client_hellos_allowed_total). */
  async echAllowed(): Promise<number> {
    return (await this.metrics()).echAllowed as number;
  }

  private async metrics(): Promise<Record<string, unknown>> {
    const r = await this.probe(0, "metrics", `127.0.0.1:${METRICS_PORT}`);
    if (!r.ok) throw new Error(`proxy metrics unreadable: ${JSON.stringify(r)}`);
    return r;
  }

  /** curl in the pod namespace as `uid`; returns exit code, body and the -w output. */
  curl(uid: number, args: string[]): Promise<RunResult> {
    return this.asUser(uid, "curl", ["-sS", "-k", "--max-time", "5", ...args]);
  }

  /** Writes profile.json / approvals.json / blocklist files (world-readable, like a projected volume). */
  writeConfig(cfg: TestConfig): void {
    const write = (name: string, text: string): void => {
      const file = path.join(this.configDir, name);
      writeFileSync(`${file}.tmp`, text, { mode: 0o644 });
      // rename = atomic swap, as the kubelet does for projected volumes
      renameSync(`${file}.tmp`, file);
    };
    const ech = cfg.encryptedClientHello === undefined ? {} : { encryptedClientHello: cfg.encryptedClientHello };
    write("profile.json", JSON.stringify({ sandbox: "t", tenant: "t", egressMode: cfg.egressMode, allowedEndpoints: cfg.allowedEndpoints, ...ech, inferencePolicy: {}, upstreams: [] }));
    write("approvals.json", JSON.stringify(cfg.approvals ?? []));
    if (cfg.blocklistSources !== undefined) write("blocklist-sources.json", JSON.stringify(cfg.blocklistSources));
    if (cfg.blocklist) {
      mkdirSync(path.join(this.configDir, "blocklist"), { recursive: true, mode: 0o755 });
      for (const [name, text] of Object.entries(cfg.blocklist)) write(path.join("blocklist", name), text);
    }
  }

  /** Starts the proxy in the pod namespace as UID 1001 on 127.0.0.1:8444 (+[::1]:8444), with optional limit overrides. */
  async startProxy(limits?: Record<string, number>): Promise<void> {
    const log = openSync(this.proxyLog, "a");
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: this.stateDir, KARS_TEST_METRICS_PORT: String(METRICS_PORT) };
    if (limits) env.KARS_TEST_LIMITS = JSON.stringify(limits);
    const child = spawn("ip", ["netns", "exec", this.pod, "setpriv", `--reuid=${ROUTER_UID}`, `--regid=${ROUTER_UID}`, "--clear-groups", "--",
      NODE, TSX, path.join(SUPPORT, "run-proxy.ts"), this.configDir, this.stateDir, "8444"], { stdio: ["ignore", "pipe", log], env });
    closeSync(log);
    this.proxy = child;
    const line = await waitForLine(child, "LISTEN egress ", 30_000).catch((err: Error) => {
      throw new Error(`${err.message}; proxy log:\n${readFileSync(this.proxyLog, "utf8").slice(-3000)}`);
    });
    this.proxyAddress = line.slice("LISTEN egress ".length).trim();
  }

  /** Stops the proxy (SIGTERM, then waits for exit). */
  async stopProxy(): Promise<void> {
    const p = this.proxy;
    this.proxy = undefined;
    if (p) await stopChild(p);
  }

  /** The proxy's JSON log lines with an `egress` field (one per decision). */
  decisions(): { via: string; allow: boolean; reason: string; host?: string; port: number; address?: string; detail?: string }[] {
    let text = "";
    try {
      text = readFileSync(this.proxyLog, "utf8");
    } catch {
      return [];
    }
    return text
      .split("\n")
      .filter((l) => l.includes('"egress":'))
      .map((l) => (JSON.parse(l) as { egress: ReturnType<EgressTestbed["decisions"]>[number] }).egress);
  }
}

/**
 * Waits (up to ~3 s) until the proxy has logged a decision containing `fields`, and returns all
 * decisions: the proxy logs asynchronously, so a line may land just after the client saw the result.
 */
export async function decisionsContaining(bed: EgressTestbed, fields: Record<string, unknown>): Promise<ReturnType<EgressTestbed["decisions"]>> {
  const has = (list: ReturnType<EgressTestbed["decisions"]>): boolean =>
    list.some((d) => Object.entries(fields).every(([k, v]) => (d as Record<string, unknown>)[k] === v));
  return eventually(async () => bed.decisions(), has, 30, 100);
}

/** Resolves with the first stdout line of `child` that starts with `prefix`. */
export function waitForLine(child: ChildProcess, prefix: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error(`timed out waiting for "${prefix}"`)), timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`process exited (${code}) before printing "${prefix}"`));
    });
    child.stdout?.on("data", (d: Buffer) => {
      buf += d.toString();
      for (const line of buf.split("\n")) {
        if (line.startsWith(prefix)) {
          clearTimeout(timer);
          resolve(line);
        }
      }
    });
  });
}

/** SIGTERM, wait up to 5 s for exit (then SIGKILL), and release its pipes. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    if ((await Promise.race([exited.then(() => true), sleep(5000).then(() => false)])) === false) child.kill("SIGKILL");
  }
  child.stdout?.destroy();
  child.stderr?.destroy();
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Retries `fn` until `accept` holds (config hot-reload is polled); returns the last value. */
export async function eventually<T>(fn: () => Promise<T>, accept: (v: T) => boolean, tries = 30, delayMs = 200): Promise<T> {
  let v = await fn();
  for (let i = 1; i < tries && !accept(v); i++) {
    await sleep(delayMs);
    v = await fn();
  }
  return v;
}
