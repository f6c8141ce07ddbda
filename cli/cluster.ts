/**
 * `kars cluster up|down` (DESIGN §0): the local control plane of DESIGN §7 on its own. `up` starts
 * etcd, kube-apiserver, kube-controller-manager and kube-scheduler on 127.0.0.1 in the background and
 * prints `KUBECONFIG=<path>`; `down` stops them and removes their state. State lives in
 * `$KARS_CLUSTER_DIR` (default ~/.cache/kars/cluster).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { cacheDir, startLocalControlPlane, stopLocalControlPlane, type LocalControlPlaneState } from "../tests/e2e-kind/local/control-plane";
import { isAlive } from "../tests/e2e-kind/local/processes";

function clusterDir(): string {
  return process.env.KARS_CLUSTER_DIR ?? join(cacheDir(), "cluster");
}

function readState(dir: string): LocalControlPlaneState | undefined {
  const file = join(dir, "state.json");
  return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as LocalControlPlaneState) : undefined;
}

/** Entry point: `args` = ["up"] | ["down"]. Returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const [verb] = args;
  const dir = clusterDir();
  const state = readState(dir);
  if (verb === "up") {
    if (state && state.pids.every(isAlive)) {
      console.log(`local control plane already running (${state.server})`);
      console.log(`KUBECONFIG=${state.kubeconfig}`);
      return 0;
    }
    if (state) await stopLocalControlPlane(state);
    const started = await startLocalControlPlane(dir);
    console.log(`local control plane up: ${started.server} (logs in ${join(dir, "logs")})`);
    console.log(`KUBECONFIG=${started.kubeconfig}`);
    return 0;
  }
  if (verb === "down") {
    if (!state) {
      console.log("no local control plane is running");
      return 0;
    }
    await stopLocalControlPlane(state);
    console.log("local control plane stopped");
    return 0;
  }
  console.error("usage: kars cluster up|down");
  return 2;
}
