/**
 * Runs a command in a runc container (the OCI runtime kubelet's containerd and CRI-O use), built from
 * the host's own /usr, /lib, /bin, /sbin, /etc and the repository, all read-only, with a tmpfs /tmp,
 * under a seccomp profile given as its JSON object (the Localhost profile format, which containerd
 * passes to runc unchanged as `linux.seccomp`). Needs root and `runc` (.ci/deps.d/seccomp.sh).
 *
 * Network: the host's network namespace by default (so loopback servers of the test are reachable),
 * or a fresh one (`network: "own"`, only `lo`) for commands that change network state.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** The repository root, bind-mounted read-only at the same path inside the container. */
export const REPO = path.resolve(__dirname, "../../..");

/** What to run and how. */
export interface ContainerSpec {
  args: string[];
  env?: Record<string, string>;
  /** Default 1000:1000, the agent's UID (DESIGN §2). */
  user?: { uid: number; gid: number };
  /** Linux capabilities kept (bounding, effective, permitted); default none. */
  capabilities?: string[];
  /** The seccomp profile (parsed JSON); null runs without one. */
  seccomp: unknown;
  network?: "host" | "own";
  /** Host directories bind-mounted at `path` (from `source`, default the same path; read-write unless `readonly`). */
  binds?: { path: string; source?: string; readonly?: boolean }[];
}

/** A started container. */
export interface Container {
  id: string;
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when the container's process has ended: its exit code (128 + signal when killed). */
  exited: Promise<number>;
  /** Sends `signal` to the container's process (`runc kill`). */
  kill(signal: "TERM" | "KILL"): void;
  /** Kills the container if still running and deletes its bundle. */
  remove(): Promise<void>;
}

/** Fails with what to do when this machine cannot run the tests (not root, no runc). */
export function requireRunc(): void {
  if (process.getuid?.() !== 0) throw new Error("seccomp profile tests need root (runc); run them as root");
  const r = spawnSync("runc", ["--version"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error("seccomp profile tests need runc; run .ci/deps.d/seccomp.sh");
}

const READ_ONLY_HOST_DIRS = ["/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc"];

/** The OCI runtime config (runtime-spec config.md) for `spec` with its rootfs at `rootfs`. */
function ociConfig(spec: ContainerSpec, rootfs: string): unknown {
  const caps = spec.capabilities ?? [];
  const namespaces = ["pid", "ipc", "uts", "mount", ...(spec.network === "own" ? ["network"] : [])].map(type => ({ type }));
  const mounts = [
    { destination: "/proc", type: "proc", source: "proc" },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
    { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
    { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777"] },
    ...[...READ_ONLY_HOST_DIRS.filter(d => fs.existsSync(d)), REPO].map(d => ({ destination: d, type: "bind", source: d, options: ["rbind", "ro"] })),
    ...(spec.binds ?? []).map(b => ({ destination: b.path, type: "bind", source: b.source ?? b.path, options: ["rbind", b.readonly ? "ro" : "rw"] })),
  ];
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: spec.user ?? { uid: 1000, gid: 1000 },
      args: spec.args,
      env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/tmp", ...Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`)],
      cwd: "/tmp",
      capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] },
      noNewPrivileges: true,
    },
    root: { path: rootfs, readonly: true },
    hostname: "kars-seccomp-test",
    mounts,
    linux: {
      namespaces,
      ...(spec.seccomp ? { seccomp: spec.seccomp } : {}),
      maskedPaths: ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
      readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
  };
}

/** Starts `spec` with `runc run` (foreground: the container's stdio is runc's). */
export function startContainer(spec: ContainerSpec): Container {
  const id = `kars-seccomp-${randomBytes(4).toString("hex")}`;
  const bundle = fs.mkdtempSync(path.join(os.tmpdir(), "kars-runc-"));
  const rootfs = path.join(bundle, "rootfs");
  fs.mkdirSync(rootfs);
  fs.writeFileSync(path.join(bundle, "config.json"), JSON.stringify(ociConfig(spec, rootfs)));
  const child = spawn("runc", ["run", "--bundle", bundle, id], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", d => (stdout += d));
  child.stderr?.on("data", d => (stderr += d));
  const exited = new Promise<number>(resolve => child.on("exit", (code, signal) => resolve(code ?? 128 + (signal ? os.constants.signals[signal] : 0))));
  return {
    id,
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    kill: signal => void spawnSync("runc", ["kill", id, signal]),
    remove: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        spawnSync("runc", ["kill", id, "KILL"]);
        await exited;
      }
      spawnSync("runc", ["delete", "--force", id]);
      fs.rmSync(bundle, { recursive: true, force: true });
    },
  };
}

/** Runs `spec` to its end (at most `timeoutMs`) and returns its exit code and output. */
export async function runContainer(spec: ContainerSpec, timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  const c = startContainer(spec);
  const timer = setTimeout(() => c.kill("KILL"), timeoutMs);
  try {
    const code = await c.exited;
    return { code, stdout: c.stdout(), stderr: c.stderr() };
  } finally {
    clearTimeout(timer);
    await c.remove();
  }
}
