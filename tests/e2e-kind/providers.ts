/**
 * Cluster providers for the e2e specs and the demo (DESIGN §7): `kind` when docker and kind both
 * work, else the local control plane on 127.0.0.1; or an existing cluster from KUBECONFIG. The same
 * specs run on each. Every provider says where the apiserver can reach a webhook served by a process
 * on this host (`webhookHost`).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { binaries, startLocalControlPlane, stopLocalControlPlane, type LocalControlPlaneState } from "./local/control-plane";
import { makePki, type Pki } from "./local/pki";

/** A running cluster and how to reach it. */
export interface Cluster {
  provider: "local" | "kind" | "kubeconfig";
  kubeconfig: string;
  kubectlBin: string;
  /** Host (IP or DNS name) the apiserver uses to call webhooks served on this machine. */
  webhookHost: string;
  /** CA + serving certificate for the local webhook server, valid for `webhookHost`. */
  pki: Pki;
  /** Provider state to stop it later from another process (`kars cluster down`). */
  local?: LocalControlPlaneState;
}

const works = (cmd: string, args: string[]): boolean => spawnSync(cmd, args, { stdio: "ignore", timeout: 20_000 }).status === 0;

/** Which provider to use: KARS_PROVIDER overrides; else kind if docker and kind work; else local. */
export function chooseProvider(env: NodeJS.ProcessEnv = process.env): Cluster["provider"] {
  const forced = env.KARS_PROVIDER;
  if (forced === "local" || forced === "kind" || forced === "kubeconfig") return forced;
  if (forced) throw new Error(`KARS_PROVIDER: must be local, kind or kubeconfig, found ${forced}`);
  if (works("docker", ["info"]) && works("kind", ["version"])) return "kind";
  return "local";
}

/** Starts (or attaches to) a cluster with working state under `dir`. */
export async function startCluster(provider: Cluster["provider"], dir: string): Promise<Cluster> {
  mkdirSync(dir, { recursive: true });
  const kubectlBin = binaries().kubectl;
  if (provider === "local") {
    const local = await startLocalControlPlane(dir);
    return { provider, kubeconfig: local.kubeconfig, kubectlBin, webhookHost: "127.0.0.1", pki: local.pki, local };
  }
  if (provider === "kind") {
    const kubeconfig = join(dir, "kubeconfig");
    const r = spawnSync("kind", ["create", "cluster", "--name", "kars-e2e", "--kubeconfig", kubeconfig, "--wait", "180s"], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`kind create cluster failed: ${r.stderr}`);
    const gw = spawnSync("docker", ["network", "inspect", "kind", "-f", "{{range .IPAM.Config}}{{.Gateway}} {{end}}"], { encoding: "utf8" });
    const host = (gw.stdout ?? "").split(" ").find(s => /^\d+\.\d+\.\d+\.\d+$/.test(s));
    if (!host) throw new Error(`could not find the kind network's gateway address: ${gw.stderr}`);
    return { provider, kubeconfig, kubectlBin, webhookHost: host, pki: makePki(join(dir, "pki"), [`IP:${host}`]) };
  }
  const kubeconfig = process.env.KUBECONFIG;
  const host = process.env.KARS_WEBHOOK_HOST;
  if (!kubeconfig) throw new Error("KUBECONFIG must name the cluster's kubeconfig");
  if (!host) throw new Error("KARS_WEBHOOK_HOST must name this machine's address as the cluster's apiserver reaches it");
  const san = /^[\d.]+$/.test(host) || host.includes(":") ? `IP:${host}` : `DNS:${host}`;
  return { provider, kubeconfig, kubectlBin, webhookHost: host, pki: makePki(join(dir, "pki"), [san]) };
}

/** Stops what `startCluster` started (nothing for an existing cluster). */
export async function stopCluster(c: Cluster): Promise<void> {
  if (c.provider === "local" && c.local) await stopLocalControlPlane(c.local);
  if (c.provider === "kind") spawnSync("kind", ["delete", "cluster", "--name", "kars-e2e"], { stdio: "ignore" });
}
