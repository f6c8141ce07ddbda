/**
 * The whole kars stack on a cluster: CRDs, the kars controller (the Pepr module, run as a local
 * process serving the webhooks over TLS) and the webhook configurations pointing at it. Used by the
 * demo, `kars cluster up` and the e2e global setup.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { desiredWebhookConfigurations, MUTATING_WEBHOOK, VALIDATING_WEBHOOK } from "../../capabilities/shared/webhook-configurations";
import { CONTROLLER_NODE_FLAGS } from "./controller-bundle";
import { kubectl, type Kubectl } from "./kubectl";
import { freePort, httpsGet, isAlive, startLogged, stopGroups, waitFor } from "./local/processes";
import { startCluster, stopCluster, type Cluster } from "./providers";

const repo = join(__dirname, "..", "..");

/** The running stack; serialisable to `<dir>/stack.json` for other processes (tests, `cluster down`). */
export interface Stack {
  dir: string;
  cluster: Cluster;
  controller: { pid: number; port: number; apiPath: string; log: string };
}

/**
 * Applies manifests/ as a cluster admin or a GitOps tool would (`kubectl apply --server-side -k
 * manifests`: CRDs, the controller's RBAC, the seccomp profile installer, the ValidatingAdmissionPolicies)
 * and waits until the CRDs are Established.
 */
export function installCrds(k: Kubectl): void {
  k.ok(["apply", "--server-side", "--field-manager", "kars-install", "-k", join(repo, "manifests")]);
  k.ok(["wait", "--for", "condition=Established", "--timeout", "60s", "crd/karssandboxes.kars.azure.com", "crd/inferencepolicies.kars.azure.com", "crd/karsimagepolicies.kars.azure.com", "crd/peprstores.pepr.dev"]);
}

/** Where startController finds the kubeconfig the controller runs with (written by controllerIdentity). */
export const controllerKubeconfig = (dir: string): string => join(dir, "kars-controller.kubeconfig");

/**
 * The controller's identity, as in a cluster: mints a token (TokenRequest, 12 h) for the
 * ServiceAccount pepr-system/kars-controller that manifests/rbac makes (installCrds applied it) and
 * writes a kubeconfig with that token beside the cluster's at controllerKubeconfig(dir), mode 0600. So every e2e spec and the demo run the controller with exactly the rights the manifests
 * grant: a missing rule fails them, as it would fail an installed kars.
 */
export function controllerIdentity(k: Kubectl, dir: string): void {
  const token = k.ok(["create", "token", "kars-controller", "-n", "pepr-system", "--duration", "12h"]).trim();
  const admin = JSON.parse(k.ok(["config", "view", "--raw", "--minify", "-o", "json"])) as { users: { name: string; user: unknown }[] };
  const config = { ...admin, users: [{ name: admin.users[0].name, user: { token } }] };
  writeFileSync(controllerKubeconfig(dir), JSON.stringify(config), { mode: 0o600 });
}

/**
 * Starts the kars controller process: `pepr.ts` under tsx on the pinned Node, with PEPR_MODE=dev
 * (watches + admission endpoints), our TLS cert, a random API path and the ServiceAccount identity of
 * controllerIdentity (which must have run for `dir`). Resolves once /healthz is up. With `bundle`
 * (controller-bundle.ts buildControllerBundle), that bundle runs instead, with CONTROLLER_NODE_FLAGS.
 */
export async function startController(cluster: Cluster, dir: string, prev?: Stack["controller"], bundle?: string): Promise<Stack["controller"]> {
  const port = prev?.port ?? (await freePort());
  const apiPath = prev?.apiPath ?? randomBytes(16).toString("hex");
  const log = join(dir, "logs", "kars-controller.log");
  // KARS_CONTROLLER_NODE_ARGS: extra node flags for the controller (profiling, GC tracing)
  const nodeArgs = (process.env.KARS_CONTROLLER_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const args = bundle ? [...CONTROLLER_NODE_FLAGS, ...nodeArgs, bundle] : [join(repo, "node_modules", "tsx", "dist", "cli.mjs"), ...nodeArgs, join(repo, "pepr.ts")];
  const pid = startLogged(process.execPath, args, log, {
    ...process.env,
    PATH: `${join(repo, "node_modules", ".bin")}:${process.env.PATH ?? ""}`,
    KUBECONFIG: controllerKubeconfig(dir),
    PEPR_MODE: "dev",
    PEPR_API_PATH: apiPath,
    SSL_KEY_PATH: cluster.pki.webhookKey,
    SSL_CERT_PATH: cluster.pki.webhookCert,
    KARS_WEBHOOK_PORT: String(port),
    // image verification reaches the specs' loopback registries (crane, plain http); every other registry is https only
    KARS_IMAGE_PLAIN_HTTP_REGISTRIES: process.env.KARS_IMAGE_PLAIN_HTTP_REGISTRIES ?? "127.0.0.1:*",
    // Pepr's own per-request lines (six per admission) at warn; kars' decisions stay at info.
    LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
    KARS_LOG_LEVEL: process.env.KARS_LOG_LEVEL ?? "info",
  });
  const ca = readFileSync(cluster.pki.caCert);
  await waitFor("the kars controller's /healthz", async () => {
    if (!isAlive(pid)) throw new Error("kars controller exited");
    return (await httpsGet(`https://127.0.0.1:${port}/healthz`, { ca })).status === 200;
  }, 90_000, () => `--- kars-controller log tail ---\n${readFileSync(log, "utf8").split("\n").slice(-40).join("\n")}`);
  return { pid, port, apiPath, log };
}

/** Registers the webhook configurations pointing at the local controller. */
export function registerWebhooks(k: Kubectl, cluster: Cluster, controller: Stack["controller"]): void {
  const caBundle = readFileSync(cluster.pki.caCert).toString("base64");
  const url = `https://${cluster.webhookHost.includes(":") ? `[${cluster.webhookHost}]` : cluster.webhookHost}:${controller.port}`;
  const configs = desiredWebhookConfigurations({ url, caBundle }, controller.apiPath);
  k.ok(["apply", "--server-side", "--force-conflicts", "--field-manager", "kars-install", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: configs }));
}

/**
 * Starts cluster + CRDs + controller + webhooks. Stops what it started if a step fails. `bundle`: see
 * startController.
 */
export async function startStack(provider: Cluster["provider"], dir: string, bundle?: string): Promise<Stack> {
  const cluster = await startCluster(provider, dir);
  mkdirSync(join(dir, "logs"), { recursive: true });
  let controller: Stack["controller"] | undefined;
  try {
    const k = kubectl(cluster.kubectlBin, cluster.kubeconfig);
    installCrds(k);
    controllerIdentity(k, dir);
    controller = await startController(cluster, dir, undefined, bundle);
    registerWebhooks(k, cluster, controller);
    const stack: Stack = { dir, cluster, controller };
    writeFileSync(join(dir, "stack.json"), JSON.stringify(stack, null, 2));
    return stack;
  } catch (e) {
    if (controller) await stopGroups([controller.pid]);
    await stopCluster(cluster);
    throw e;
  }
}

/** Reads a stack written by `startStack` in another process. */
export function readStack(dir: string): Stack {
  return JSON.parse(readFileSync(join(dir, "stack.json"), "utf8")) as Stack;
}

/** Removes the webhook configurations (for clusters kars does not own, after the controller stops). */
export function unregisterWebhooks(k: Kubectl): void {
  k(["delete", "mutatingwebhookconfiguration", MUTATING_WEBHOOK, "--ignore-not-found"]);
  k(["delete", "validatingwebhookconfiguration", VALIDATING_WEBHOOK, "--ignore-not-found"]);
}

/** Stops the controller, then the cluster. Leaves nothing running. */
export async function stopStack(stack: Stack): Promise<void> {
  await stopGroups([stack.controller.pid].filter(isAlive));
  await stopCluster(stack.cluster);
}
