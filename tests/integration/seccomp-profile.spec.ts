// manifests/seccomp/kars-strict.json (DESIGN §2: the pod's seccomp profile for isolation=enhanced) loaded
// by runc, the OCI runtime a node starts pods with, as containerd hands it a Localhost profile. Shows
// that what runs in a sandbox pod works under it (agent runtimes as UID 1000, the router as UID 1001,
// egress-guard's iptables as root with NET_ADMIN + NET_RAW), and that the calls it refuses are refused
// by the profile itself: the same probe under a copy whose refusals carry marker errnos returns the
// markers, so no refusal is the work of missing capabilities or of the kernel.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { V1DaemonSet } from "@kubernetes/client-node";
import { request } from "undici";
import { parse as parseYaml } from "yaml";
import { startFakeUpstream, type FakeUpstream } from "./router-support/fake-upstream";
import { REPO, requireRunc, runContainer, startContainer } from "./seccomp-support/container";

jest.setTimeout(120_000);

const PROFILE_PATH = path.join(REPO, "manifests/seccomp/kars-strict.json");
const NODE = path.join(REPO, "node_modules/node/bin/node");

interface SeccompRule {
  names: string[];
  action: string;
  errnoRet?: number;
}
interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  syscalls: SeccompRule[];
}

const profile = JSON.parse(fs.readFileSync(PROFILE_PATH, "utf8")) as SeccompProfile;

/** Marker errnos of the variant: explicit EPERM refusals, other explicit refusals, the default action. */
const MARK = { denied: 200, otherRule: 201, default: 202 };

/** kars-strict with every refusal's errno replaced by a marker (nothing else changed). */
function markedVariant(p: SeccompProfile): SeccompProfile {
  return {
    ...p,
    defaultErrnoRet: MARK.default,
    syscalls: p.syscalls.map(r => (r.action === "SCMP_ACT_ERRNO" ? { ...r, errnoRet: r.errnoRet === 1 ? MARK.denied : MARK.otherRule } : r)),
  };
}

beforeAll(() => requireRunc());

describe("what a sandbox pod runs works under kars-strict", () => {
  it("Node 24 as the agent (UID 1000, no capabilities): HTTP server and fetch on loopback, child processes, worker threads, files, crypto, zlib, network interfaces", async () => {
    const script = `
      const http = require("http"), cp = require("child_process"), fs = require("fs"), { Worker } = require("worker_threads");
      const s = http.createServer((q, r) => r.end("pong")).listen(0, "127.0.0.1", async () => {
        const reply = await (await fetch("http://127.0.0.1:" + s.address().port)).text();
        const child = cp.execFileSync("/bin/sh", ["-c", "echo child-$(id -u)"]).toString().trim();
        fs.writeFileSync("/tmp/f", "file"); fs.renameSync("/tmp/f", "/tmp/g");
        const w = new Worker("require('worker_threads').parentPort.postMessage('worker')", { eval: true });
        w.on("message", m => {
          const gz = require("zlib").gunzipSync(require("zlib").gzipSync("zlib")).toString();
          console.log([reply, child, fs.readFileSync("/tmp/g", "utf8"), m, require("crypto").randomUUID().length, gz, require("os").networkInterfaces().lo ? "lo" : "no-lo"].join(" "));
          s.close(); w.terminate();
        });
      });`;
    const r = await runContainer({ args: [NODE, "-e", script], seccomp: profile });
    expect(r).toEqual({ code: 0, stdout: "pong child-1000 file worker 36 zlib lo\n", stderr: "" });
  });

  it("Python as the agent: threads, subprocesses, a multiprocessing pool, sockets, TLS context, sqlite, temp files", async () => {
    const script = [
      "import threading, subprocess, multiprocessing, socket, ssl, sqlite3, tempfile, json",
      "out = []",
      "t = threading.Thread(target=lambda: out.append('thread')); t.start(); t.join()",
      "out.append(subprocess.run(['echo', 'sub'], capture_output=True, text=True).stdout.strip())",
      "with multiprocessing.Pool(2) as p: out.append(sum(p.map(abs, [-1, -2])))",
      "srv = socket.create_server(('127.0.0.1', 0)); c = socket.create_connection(srv.getsockname()); a, _ = srv.accept(); c.sendall(b'sock'); out.append(a.recv(4).decode())",
      "out.append(ssl.create_default_context().protocol.name)",
      "out.append(sqlite3.connect(':memory:').execute('select 6*7').fetchone()[0])",
      "with tempfile.NamedTemporaryFile() as f: f.write(b'x'); f.flush(); out.append('tmp')",
      "print(json.dumps(out))",
    ].join("\n");
    const r = await runContainer({ args: ["python3", "-c", script], seccomp: profile });
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual(["thread", "sub", 3, "sock", "PROTOCOL_TLS_CLIENT", 42, "tmp"]);
    expect(r.code).toBe(0);
  });

  it("shell tools as the agent", async () => {
    const r = await runContainer({ args: ["/bin/sh", "-c", "ls / >/dev/null && date +%Y >/dev/null && echo abc | sed s/b/B/ | grep aBc && sleep 0.1 && cat /proc/self/status | grep -c '^Seccomp:.*2'"], seccomp: profile });
    expect(r).toEqual({ code: 0, stdout: "aBc\n1\n", stderr: "" });
  });

  describe("the router (UID 1001)", () => {
    let upstream: FakeUpstream;
    let dir: string;
    beforeAll(async () => {
      upstream = await startFakeUpstream();
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "kars-seccomp-router-"));
      fs.chmodSync(dir, 0o755);
    });
    afterAll(async () => {
      await upstream.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it("starts, answers a chat call through its upstream, and stops cleanly on SIGTERM", async () => {
      const configDir = path.join(dir, "config");
      const stateDir = path.join(dir, "state");
      fs.mkdirSync(configDir);
      fs.mkdirSync(stateDir);
      fs.chownSync(stateDir, 1001, 1001);
      fs.writeFileSync(path.join(configDir, "ops-token"), "ops-seccomp");
      fs.writeFileSync(path.join(configDir, "upstream-key"), "sk-upstream");
      fs.writeFileSync(path.join(configDir, "profile.json"), JSON.stringify({
        sandbox: "seccomp-demo", tenant: "t", egressMode: "Strict", allowedEndpoints: [],
        inferencePolicy: { tokenBudget: { hourlyTokens: 1000, dailyTokens: 1000, monthlyTokens: 1000 } },
        upstreams: [{ name: "m", provider: "openai-compatible", endpoint: `${upstream.url}/v1`, apiKeyFile: "upstream-key" }],
        listen: { api: "127.0.0.1:0", egress: "127.0.0.1:0", ops: "127.0.0.1:0" },
      }));
      const router = startContainer({
        args: [NODE, path.join(REPO, "bin/kars.js"), "router", "--config-dir", configDir, "--state-dir", stateDir],
        env: { KARS_AZURE_IMDS: "off" },
        user: { uid: 1001, gid: 1001 },
        seccomp: profile,
        binds: [{ path: configDir, readonly: true }, { path: stateDir }],
      });
      try {
        const started = Date.now();
        while (!/^LISTEN ops /m.test(router.stdout())) {
          if (router.child.exitCode !== null || Date.now() - started > 60_000) throw new Error(`router did not start under kars-strict:\n${router.stderr()}`);
          await new Promise(r => setTimeout(r, 100));
        }
        const api = /^LISTEN api (\S+)$/m.exec(router.stdout())![1];
        const res = await request(`http://${api}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: "m", max_tokens: 5, messages: [{ role: "user", content: "hello" }] }),
        });
        const body = (await res.body.json()) as { choices: { message: { content: string } }[] };
        expect(res.statusCode).toBe(200);
        expect(body.choices[0].message.content).toBe("Hello!");
        router.kill("TERM");
        expect(await router.exited).toBe(0);
        // the budget journal and the signed audit log were written (and synced) under the profile
        expect(fs.readFileSync(path.join(stateDir, "audit", "audit.jsonl"), "utf8")).toMatch(/"kind":"inference","sandbox":"seccomp-demo"/);
      } finally {
        await router.remove();
      }
    });
  });

  it("egress-guard installs its rules (root with NET_ADMIN + NET_RAW, in the pod's own network namespace)", async () => {
    const r = await runContainer({
      args: ["/bin/sh", "-c", `${path.join(REPO, "router/egress-guard/egress-guard.sh")} && iptables -w -S OUTPUT && iptables -w -t nat -S OUTPUT`],
      env: { KARS_DNS_SERVERS: "10.96.0.10" },
      user: { uid: 0, gid: 0 },
      capabilities: ["CAP_NET_ADMIN", "CAP_NET_RAW"],
      seccomp: profile,
      network: "own",
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^-A OUTPUT -m owner --uid-owner 1000 -j KARS-EGRESS$/m);
    expect(r.stdout).toMatch(/^-A OUTPUT .*-j KARS-EGRESS-NAT$/m);
  });
});

describe("what kars-strict refuses, it refuses itself", () => {
  // errno 1 = EPERM (an explicit refusal: DESIGN §2's list and more), 38 = ENOSYS (looks unimplemented,
  // so a C library falls back: clone3 → clone; or simply not on the allow list)
  const expected: [string, number, number][] = [
    ...["mount", "umount2", "ptrace", "bpf", "unshare", "setns", "keyctl", "add_key", "request_key", "userfaultfd", "perf_event_open",
      "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "pivot_root", "swapon", "swapoff", "reboot",
      "open_by_handle_at", "name_to_handle_at", "process_vm_readv", "process_vm_writev", "iopl", "ioperm", "acct", "quotactl",
      "chroot", "io_uring_setup", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "pidfd_getfd",
      "clone(CLONE_NEWUSER|CLONE_FS)", "clone(CLONE_NEWNET|CLONE_NEWNS)"].map((n): [string, number, number] => [n, 1, MARK.denied]),
    ["clone3", 38, MARK.otherRule],
    // 97 = EAFNOSUPPORT: socket families other than UNIX, INET, INET6 and NETLINK
    ["socket(AF_VSOCK)", 97, MARK.otherRule],
    ["socket(AF_ALG)", 97, MARK.otherRule],
    ["socket(AF_PACKET)", 97, MARK.otherRule],
    ["personality(ADDR_NO_RANDOMIZE)", 38, MARK.default],
    ["memfd_secret", 38, MARK.default],
    ["fanotify_init", 38, MARK.default],
  ];
  let strict: Record<string, number | string>;
  let marked: Record<string, number | string>;
  beforeAll(async () => {
    const probe = async (p: SeccompProfile) => {
      const r = await runContainer({ args: ["python3", path.join(REPO, "tests/integration/seccomp-support/syscall-probe.py")], seccomp: p });
      if (r.code !== 0) throw new Error(`syscall probe failed (${r.code}): ${r.stderr}`);
      return JSON.parse(r.stdout) as Record<string, number | string>;
    };
    [strict, marked] = [await probe(profile), await probe(markedVariant(profile))];
    if ("unsupported" in strict) throw new Error(`the syscall probe knows x86_64 numbers only; this machine is ${String(strict.unsupported)}`);
  });

  it.each(expected)("%s: errno %i, and the marker %i under the marked copy", (name, errno, marker) => {
    expect(strict[name]).toBe(errno);
    expect(marked[name]).toBe(marker);
  });

  it("every call the probe makes is in the table above, and the allowed forms of personality and socket are allowed", () => {
    expect(Object.keys(strict).sort()).toEqual([...expected.map(e => e[0]), "personality(query)", "socket(AF_INET)"].sort());
    expect(strict["personality(query)"]).toBe("ok");
    expect(strict["socket(AF_INET)"]).toBe("ok");
  });
});

describe("the installer DaemonSet's install step (manifests/seccomp/installer.yaml) on a node", () => {
  const installer = parseYaml(fs.readFileSync(path.join(REPO, "manifests/seccomp/installer.yaml"), "utf8")) as V1DaemonSet;
  const podSpec = installer.spec!.template.spec!;
  const install = podSpec.initContainers![0];
  const mountOf = (volume: string) => install.volumeMounts!.find(m => m.name === volume)!.mountPath;
  let dir: string;
  let configMapVolume: string;
  let kubeletDir: string;
  const profileText = fs.readFileSync(PROFILE_PATH, "utf8");

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kars-seccomp-install-"));
    // a configMap volume as the kubelet lays it out: the files are symlinks through ..data
    configMapVolume = path.join(dir, "configmap");
    fs.mkdirSync(path.join(configMapVolume, "..2026_12_01_00_00_00.1"), { recursive: true });
    fs.writeFileSync(path.join(configMapVolume, "..2026_12_01_00_00_00.1", "kars-strict.json"), profileText);
    fs.symlinkSync("..2026_12_01_00_00_00.1", path.join(configMapVolume, "..data"));
    fs.symlinkSync("..data/kars-strict.json", path.join(configMapVolume, "kars-strict.json"));
    kubeletDir = path.join(dir, "kubelet-seccomp-profiles"); // the hostPath: root's, 0755, as the kubelet makes it
    fs.mkdirSync(kubeletDir, { mode: 0o755 });
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** The init container as the pod spec has it: its command, user, capabilities and mounts. */
  const runInstall = () => {
    expect(podSpec.volumes!.map(v => [v.name, v.configMap ? "configMap" : v.hostPath ? "hostPath" : "other"])).toEqual([["profiles", "configMap"], ["kubelet-seccomp-profiles", "hostPath"]]);
    const caps = (install.securityContext!.capabilities!.add ?? []).map(c => `CAP_${c}`);
    expect(install.securityContext).toMatchObject({ runAsUser: 0, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
    return runContainer({
      args: install.command!,
      user: { uid: install.securityContext!.runAsUser!, gid: install.securityContext!.runAsGroup! },
      capabilities: caps,
      seccomp: null, // RuntimeDefault on a node
      binds: [{ path: mountOf("profiles"), source: configMapVolume, readonly: true }, { path: mountOf("kubelet-seccomp-profiles"), source: kubeletDir }],
    });
  };

  it("puts kars-strict.json in the kubelet's directory, byte for byte, world-readable, with no temporary file left", async () => {
    const r = await runInstall();
    expect(r).toEqual({ code: 0, stdout: `installed kars-strict.json (${Buffer.byteLength(profileText)} bytes)\n`, stderr: "" });
    expect(fs.readdirSync(kubeletDir)).toEqual(["kars-strict.json"]);
    expect(fs.readFileSync(path.join(kubeletDir, "kars-strict.json"), "utf8")).toBe(profileText);
    expect(fs.statSync(path.join(kubeletDir, "kars-strict.json")).mode & 0o777).toBe(0o644);
  });

  it("replaces an older profile in place (a rolled DaemonSet)", async () => {
    fs.writeFileSync(path.join(kubeletDir, "kars-strict.json"), "{\"defaultAction\":\"SCMP_ACT_ALLOW\"}");
    expect((await runInstall()).code).toBe(0);
    expect(fs.readFileSync(path.join(kubeletDir, "kars-strict.json"), "utf8")).toBe(profileText);
  });

  it("fails the pod (and so shows on the DaemonSet) when the ConfigMap holds no profile", async () => {
    fs.rmSync(path.join(configMapVolume, "kars-strict.json"));
    const r = await runInstall();
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("no profiles in /kars-profiles\n");
    expect(fs.readdirSync(kubeletDir)).toEqual([]);
  });
});
