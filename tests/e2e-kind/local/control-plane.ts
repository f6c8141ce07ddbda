/**
 * The local control plane of DESIGN §7: etcd, kube-apiserver, kube-controller-manager,
 * kube-scheduler and a kwok fake node, built from their Go modules by `build-binaries.sh`, started
 * on 127.0.0.1 on free ports with self-signed certificates. `startLocalControlPlane` returns once the apiserver is ready
 * and the default ServiceAccount controller is running; `stop` leaves nothing running.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { adminKubeconfig, makePki, type Pki } from "./pki";
import { freePort, httpsGet, isAlive, startLogged, stopGroups, waitFor } from "./processes";

/** Pinned versions; keep in step with build-binaries.sh. */
export const K8S_VERSION = process.env.KARS_K8S_VERSION ?? "v1.36.3";
export const ETCD_VERSION = process.env.KARS_ETCD_VERSION ?? "v3.6.16";
export const KWOK_VERSION = process.env.KARS_KWOK_VERSION ?? "v0.8.0";

/** Cache root of the Go-built binaries. */
export function cacheDir(): string {
  return process.env.KARS_CACHE ?? join(homedir(), ".cache", "kars");
}

/** Paths of the binaries the local provider runs. */
export function binaries(): Record<"etcd" | "apiserver" | "controllerManager" | "scheduler" | "kubectl" | "kwok", string> {
  const k8s = join(cacheDir(), "bin", `kubernetes-${K8S_VERSION}`);
  return {
    etcd: join(cacheDir(), "bin", `etcd-${ETCD_VERSION}`, "etcd"),
    apiserver: join(k8s, "kube-apiserver"),
    controllerManager: join(k8s, "kube-controller-manager"),
    scheduler: join(k8s, "kube-scheduler"),
    kubectl: join(k8s, "kubectl"),
    kwok: join(cacheDir(), "bin", `kwok-${KWOK_VERSION}`, "kwok"),
  };
}

/** A running local control plane; serialisable so `kars cluster down` can stop it later. */
export interface LocalControlPlaneState {
  dir: string;
  kubeconfig: string;
  server: string;
  pids: number[];
  pki: Pki;
}

/**
 * Starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler under `dir` (state, logs,
 * certs). Throws with the component's log tail when one does not become ready within 90 s.
 */
export async function startLocalControlPlane(dir: string): Promise<LocalControlPlaneState> {
  const bins = binaries();
  for (const [name, path] of Object.entries(bins)) {
    if (!existsSync(path)) throw new Error(`${name} not found at ${path}: run 'npm run build:binaries' first`);
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, "logs"), { recursive: true });
  const pki = makePki(join(dir, "pki"));
  const pids: number[] = [];
  const log = (name: string): string => join(dir, "logs", `${name}.log`);
  const tail = (name: string) => (): string => {
    try {
      return `--- ${name} log tail ---\n` + readFileSync(log(name), "utf8").split("\n").slice(-30).join("\n");
    } catch {
      return "";
    }
  };
  const state: LocalControlPlaneState = { dir, kubeconfig: join(dir, "kubeconfig"), server: "", pids, pki };
  try {
    const [etcdClient, etcdPeer, apiPort, kcmPort, schedPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
    pids.push(
      startLogged(bins.etcd, [
        "--name", "kars", "--data-dir", join(dir, "etcd"),
        "--listen-client-urls", `http://127.0.0.1:${etcdClient}`, "--advertise-client-urls", `http://127.0.0.1:${etcdClient}`,
        "--listen-peer-urls", `http://127.0.0.1:${etcdPeer}`, "--initial-advertise-peer-urls", `http://127.0.0.1:${etcdPeer}`,
        "--initial-cluster", `kars=http://127.0.0.1:${etcdPeer}`, "--unsafe-no-fsync", "--log-level", "warn",
      ], log("etcd")),
    );
    state.server = `https://127.0.0.1:${apiPort}`;
    pids.push(
      startLogged(bins.apiserver, [
        "--etcd-servers", `http://127.0.0.1:${etcdClient}`,
        "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", String(apiPort),
        "--tls-cert-file", pki.apiserverCert, "--tls-private-key-file", pki.apiserverKey, "--client-ca-file", pki.caCert,
        "--service-account-issuer", "https://kubernetes.default.svc", "--service-account-key-file", pki.saPub,
        "--service-account-signing-key-file", pki.saKey, "--service-cluster-ip-range", "10.0.0.0/24",
        "--authorization-mode", "Node,RBAC", "--allow-privileged=true", "--enable-priority-and-fairness=false",
        "--profiling=false", "--v=1",
      ], log("kube-apiserver")),
    );
    const tls = { ca: readFileSync(pki.caCert), cert: readFileSync(pki.adminCert), key: readFileSync(pki.adminKey) };
    await waitFor("kube-apiserver /readyz", async () => (await httpsGet(`${state.server}/readyz`, tls)).status === 200, 90_000, tail("kube-apiserver"));
    writeFileSync(state.kubeconfig, adminKubeconfig(pki, state.server), { mode: 0o600 });
    pids.push(
      startLogged(bins.controllerManager, [
        "--kubeconfig", state.kubeconfig, "--authentication-kubeconfig", state.kubeconfig, "--authorization-kubeconfig", state.kubeconfig,
        "--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", String(kcmPort),
        "--service-account-private-key-file", pki.saKey, "--root-ca-file", pki.caCert,
        "--use-service-account-credentials=false", "--controllers", "*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-persistentvolume-binder,-attachdetach",
        // kube-controller-manager's client defaults (20 requests/s, bursts of 30) would make it the slowest part of
        // creating many workloads at once (bench:reconcile's 1,000 Deployments: ~4,000 requests)
        "--concurrent-gc-syncs", "5", "--kube-api-qps", "200", "--kube-api-burst", "400", "--v=1",
      ], log("kube-controller-manager")),
    );
    pids.push(
      startLogged(bins.scheduler, [
        "--kubeconfig", state.kubeconfig, "--authentication-kubeconfig", state.kubeconfig, "--authorization-kubeconfig", state.kubeconfig,
        "--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", String(schedPort), "--v=1",
      ], log("kube-scheduler")),
    );
    await waitFor("kube-controller-manager /healthz", async () => (await httpsGet(`https://127.0.0.1:${kcmPort}/healthz`, { rejectUnauthorized: false, cert: tls.cert, key: tls.key }, 2000)).status === 200, 60_000, tail("kube-controller-manager"));
    await startFakeNode(state, bins.kubectl, bins.kwok, log("kwok"));
    writeFileSync(join(dir, "state.json"), JSON.stringify(state, null, 2));
    return state;
  } catch (e) {
    await stopGroups(pids);
    throw e;
  }
}

/** The fake node kwok manages (no container runtime: pods turn Running, nothing executes). */
export const FAKE_NODE = {
  apiVersion: "v1",
  kind: "Node",
  metadata: { name: "kars-node-0", annotations: { "kwok.x-k8s.io/node": "fake" }, labels: { type: "kwok", "kubernetes.io/hostname": "kars-node-0", "kubernetes.io/os": "linux" } },
  status: { allocatable: { cpu: "32", memory: "256Gi", pods: "110" }, capacity: { cpu: "32", memory: "256Gi", pods: "110" } },
};

/**
 * Registers FAKE_NODE and starts kwok to run its lifecycle ("fast" stages: Ready node, Running pods).
 * Pod and node addresses kwok reports are fake and never contacted.
 */
async function startFakeNode(state: LocalControlPlaneState, kubectlBin: string, kwokBin: string, logFile: string): Promise<void> {
  const r = spawnSync(kubectlBin, ["--kubeconfig", state.kubeconfig, "apply", "-f", "-"], { input: JSON.stringify(FAKE_NODE), encoding: "utf8" });
  if (r.status !== 0) throw new Error(`could not register the fake node: ${r.stderr}`);
  const stages = join(dirname(kwokBin), "stages");
  const stageArgs = readdirSync(stages).filter(f => f.endsWith(".yaml")).flatMap(f => ["-c", join(stages, f)]);
  state.pids.push(
    startLogged(kwokBin, [
      "--kubeconfig", state.kubeconfig, ...stageArgs, "--manage-all-nodes=false",
      "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake", "--cidr=10.244.0.0/16", "--node-ip=10.0.0.2",
      "--node-lease-duration-seconds=40",
    ], logFile),
  );
}

/** Stops every process of `state` and removes its directory. */
export async function stopLocalControlPlane(state: LocalControlPlaneState, keepDir = false): Promise<void> {
  await stopGroups(state.pids.filter(isAlive));
  if (!keepDir) rmSync(state.dir, { recursive: true, force: true });
}
