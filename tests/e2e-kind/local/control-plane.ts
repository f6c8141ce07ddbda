/**
 * The local control plane of DESIGN §7: etcd, kube-apiserver and kube-controller-manager (and
 * kube-scheduler) built from their Go modules by `build-binaries.sh`, started on 127.0.0.1 on free
 * ports with self-signed certificates. `startLocalControlPlane` returns once the apiserver is ready
 * and the default ServiceAccount controller is running; `stop` leaves nothing running.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { adminKubeconfig, makePki, type Pki } from "./pki";
import { freePort, httpsGet, isAlive, startLogged, stopGroups, waitFor } from "./processes";

/** Pinned versions; keep in step with build-binaries.sh. */
export const K8S_VERSION = process.env.KARS_K8S_VERSION ?? "v1.36.3";
export const ETCD_VERSION = process.env.KARS_ETCD_VERSION ?? "v3.6.16";

/** Cache root of the Go-built binaries. */
export function cacheDir(): string {
  return process.env.KARS_CACHE ?? join(homedir(), ".cache", "kars");
}

/** Paths of the binaries the local provider runs. */
export function binaries(): Record<"etcd" | "apiserver" | "controllerManager" | "scheduler" | "kubectl", string> {
  const k8s = join(cacheDir(), "bin", `kubernetes-${K8S_VERSION}`);
  return {
    etcd: join(cacheDir(), "bin", `etcd-${ETCD_VERSION}`, "etcd"),
    apiserver: join(k8s, "kube-apiserver"),
    controllerManager: join(k8s, "kube-controller-manager"),
    scheduler: join(k8s, "kube-scheduler"),
    kubectl: join(k8s, "kubectl"),
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
        "--use-service-account-credentials=false", "--controllers", "*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service-lb-controller,-persistentvolume-binder,-attachdetach",
        "--concurrent-gc-syncs", "5", "--v=1",
      ], log("kube-controller-manager")),
    );
    pids.push(
      startLogged(bins.scheduler, [
        "--kubeconfig", state.kubeconfig, "--authentication-kubeconfig", state.kubeconfig, "--authorization-kubeconfig", state.kubeconfig,
        "--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", String(schedPort), "--v=1",
      ], log("kube-scheduler")),
    );
    await waitFor("kube-controller-manager /healthz", async () => (await httpsGet(`https://127.0.0.1:${kcmPort}/healthz`, { rejectUnauthorized: false, cert: tls.cert, key: tls.key }, 2000)).status === 200, 60_000, tail("kube-controller-manager"));
    writeFileSync(join(dir, "state.json"), JSON.stringify(state, null, 2));
    return state;
  } catch (e) {
    await stopGroups(pids);
    throw e;
  }
}

/** Stops every process of `state` and removes its directory. */
export async function stopLocalControlPlane(state: LocalControlPlaneState, keepDir = false): Promise<void> {
  await stopGroups(state.pids.filter(isAlive));
  if (!keepDir) rmSync(state.dir, { recursive: true, force: true });
}
