/**
 * `npm run bench:reconcile` (DESIGN §8), on the local control plane (etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler, kwok nodes that run pods to Running): how long the kars
 * controller takes to reconcile BENCH_SANDBOXES (default 1,000) KarsSandboxes, applied at once as a
 * GitOps sync would, until every one reports Ready=True at its generation (namespace, ServiceAccount,
 * NetworkPolicy, router profile and Deployment applied; the agent pod admitted by the kars webhooks and
 * Running); target < 60 s, controller RSS (peak, the whole process tree) < 300 MiB. The controller
 * runs as an image would run it: one esbuild bundle on Node 24 with CONTROLLER_NODE_FLAGS
 * (tests/e2e-kind/controller-bundle.ts), as the kars-controller ServiceAccount.
 *
 * The baseline named beside it: the same number of namespaces and one-replica Deployments created
 * straight through the apiserver (no kars involved), timed until every Deployment is Available: what
 * the control plane itself takes for that many workloads on this box. Both are created by the same
 * client at the same concurrency.
 *
 * Environment: BENCH_SANDBOXES (default 1000), BENCH_TIMEOUT_S (per phase, default 300),
 * BENCH_CONCURRENCY (creates in flight, default 8).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { buildControllerBundle } from "../../tests/e2e-kind/controller-bundle";
import { FAKE_NODE } from "../../tests/e2e-kind/local/control-plane";
import { kubectl } from "../../tests/e2e-kind/kubectl";
import { startStack, stopStack } from "../../tests/e2e-kind/stack";
import { apiserverClient, type ApiserverClient } from "../apiserver-client";
import { rssByProcess, rssMiB, treeCpuMs } from "../proc";

const N = Number(process.env.BENCH_SANDBOXES ?? 1000);
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_S ?? 300) * 1000;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
/** Pods one kwok node takes (FAKE_NODE's capacity). */
const PODS_PER_NODE = Number(FAKE_NODE.status.capacity.pods);
const TENANT = "bench-tenant";
const POLICY = "bench-inference";

function log(msg: string): void {
  process.stderr.write(`bench:reconcile ${msg}\n`);
}

type Api = ApiserverClient;

/** POSTs every object to its collection path, CONCURRENCY at a time; throws on an answer other than 201. */
async function createAll(api: Api, objects: { path: string; body: unknown }[]): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < objects.length) {
      const o = objects[next++]!;
      const r = await api.request("POST", o.path, o.body);
      if (r.status !== 201) throw new Error(`POST ${o.path} answered ${r.status}: ${r.body.slice(0, 300)}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

/**
 * Polls `count` (a list through the apiserver, counted) every second until it reaches `want` or
 * TIMEOUT_MS passed, sampling `sample` meanwhile; returns seconds since `t0` and the last count.
 */
async function until(what: string, t0: number, want: number, count: () => Promise<number>): Promise<{ seconds: number; reached: number }> {
  let reached = 0;
  let lastLog = 0;
  for (;;) {
    reached = await count().catch(() => reached);
    const elapsed = performance.now() - t0;
    if (reached >= want) return { seconds: elapsed / 1000, reached };
    if (elapsed > TIMEOUT_MS) return { seconds: NaN, reached };
    if (elapsed - lastLog > 10_000) {
      log(`${what}: ${reached}/${want} after ${(elapsed / 1000).toFixed(0)} s`);
      lastLog = elapsed;
    }
    await new Promise(r => setTimeout(r, 1000));
  }
}

/** Baseline: N namespaces with one plain one-replica Deployment each, created directly; seconds until all are Available. */
async function baseline(api: Api): Promise<{ seconds: number; reached: number }> {
  const objects: { path: string; body: unknown }[] = [];
  for (let i = 0; i < N; i++) objects.push({ path: "/api/v1/namespaces", body: { apiVersion: "v1", kind: "Namespace", metadata: { name: `plain-${i}`, labels: { bench: "plain" } } } });
  const deployments = Array.from({ length: N }, (_, i) => ({
    path: `/apis/apps/v1/namespaces/plain-${i}/deployments`,
    body: {
      apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "agent", labels: { bench: "plain" } },
      spec: { replicas: 1, selector: { matchLabels: { app: "agent" } }, template: { metadata: { labels: { app: "agent" } }, spec: { containers: [{ name: "agent", image: "example.com/agent:1" }] } } },
    },
  }));
  const t0 = performance.now();
  await createAll(api, objects);
  await createAll(api, deployments);
  return until("plain Deployments available", t0, N, async () => {
    const r = await api.request("GET", "/apis/apps/v1/deployments?labelSelector=bench%3Dplain");
    const items = (JSON.parse(r.body) as { items: { status?: { availableReplicas?: number } }[] }).items;
    return items.filter(d => d.status?.availableReplicas === 1).length;
  });
}

/** kars: N KarsSandboxes naming one InferencePolicy in one tenant namespace; seconds until all are Ready=True at their generation. */
async function kars(api: Api): Promise<{ seconds: number; reached: number }> {
  const sandboxes = Array.from({ length: N }, (_, i) => ({
    path: `/apis/kars.azure.com/v1alpha1/namespaces/${TENANT}/karssandboxes`,
    body: {
      apiVersion: "kars.azure.com/v1alpha1", kind: "KarsSandbox",
      metadata: { name: `agent-${String(i).padStart(4, "0")}`, labels: { bench: "kars" } },
      spec: {
        runtime: { kind: "OpenAIAgents", openaiAgents: { pythonVersion: "3.12" } },
        sandbox: { isolation: "enhanced" },
        networkPolicy: { egressMode: "Strict", allowedEndpoints: [{ host: "api.github.com" }] },
        inferenceRef: { name: POLICY },
      },
    },
  }));
  const t0 = performance.now();
  await createAll(api, sandboxes);
  log(`${N} KarsSandboxes created in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return until("KarsSandboxes Ready", t0, N, async () => {
    const r = await api.request("GET", `/apis/kars.azure.com/v1alpha1/namespaces/${TENANT}/karssandboxes`);
    const items = (JSON.parse(r.body) as { items: { metadata: { generation?: number }; status?: { observedGeneration?: number; conditions?: { type: string; status: string }[] } }[] }).items;
    return items.filter(s => s.status?.observedGeneration === s.metadata.generation && s.status?.conditions?.some(c => c.type === "Ready" && c.status === "True")).length;
  });
}

/** Reconciles the controller has logged so far ("reconcile done" lines of its log). */
function reconcileLines(logFile: string): number {
  return readFileSync(logFile, "utf8").split("\n").filter(l => l.includes('"reconcile done"')).length;
}

/**
 * The apiserver's request counts and handling time (s) so far, by verb, resource and subresource
 * (`apiserver_request_duration_seconds` of its /metrics, summed over the other labels).
 */
async function apiserverRequests(api: Api): Promise<Map<string, { count: number; seconds: number }>> {
  const text = (await api.request("GET", "/metrics")).body;
  const out = new Map<string, { count: number; seconds: number }>();
  for (const line of text.split("\n")) {
    const m = /^apiserver_request_duration_seconds_(sum|count)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map(x => [x[1], x[2]]));
    const key = `${labels.verb} ${labels.resource}${labels.subresource ? `/${labels.subresource}` : ""}`;
    const e = out.get(key) ?? { count: 0, seconds: 0 };
    if (m[1] === "sum") e.seconds += Number(m[3]);
    else e.count += Number(m[3]);
    out.set(key, e);
  }
  return out;
}

/** The `top` request kinds by handling time between two apiserverRequests readings, per sandbox. */
function topRequests(before: Map<string, { count: number; seconds: number }>, after: Map<string, { count: number; seconds: number }>, top: number): string {
  return [...after]
    .map(([key, a]) => ({ key, count: a.count - (before.get(key)?.count ?? 0), seconds: a.seconds - (before.get(key)?.seconds ?? 0) }))
    .filter(r => r.count > 0 && !r.key.startsWith("WATCH"))
    .sort((x, y) => y.seconds - x.seconds)
    .slice(0, top)
    .map(r => `${r.key.replace(" ", ":")}=${(r.count / N).toFixed(1)}x/${((r.seconds * 1000) / r.count).toFixed(1)}ms`)
    .join(" ");
}

const fmt = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : "n/a");

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "kars-bench-reconcile-"));
  log(`starting the local control plane and the kars controller in ${dir}`);
  // the controller as an image would run it: one bundle on Node 24 (controller-bundle.ts), not tsx
  const bundle = join(dir, "controller.js");
  buildControllerBundle(bundle);
  const stack = await startStack("local", join(dir, "stack"), bundle);
  // an interrupted run leaves no control plane behind
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => void stopStack(stack).finally(() => process.exit(130)));
  const api = apiserverClient(stack.cluster.kubeconfig, CONCURRENCY + 2);
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(stack.controller.pid))), 250);
  try {
    const k = kubectl(stack.cluster.kubectlBin, stack.cluster.kubeconfig);
    // enough kwok nodes for both phases' pods (kwok runs every node with FAKE_NODE's annotation)
    const nodes = Math.ceil((2 * N) / PODS_PER_NODE) + 1;
    const extra = Array.from({ length: nodes }, (_, i) => ({ ...FAKE_NODE, metadata: { ...FAKE_NODE.metadata, name: `kars-node-b${i}`, labels: { ...FAKE_NODE.metadata.labels, "kubernetes.io/hostname": `kars-node-b${i}` } } }));
    k.ok(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: extra }));
    k.ok(["wait", "--for", "condition=Ready", "--timeout", "60s", "node", "--all"]);
    k.ok(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: [
      { apiVersion: "v1", kind: "Namespace", metadata: { name: TENANT } },
      { apiVersion: "kars.azure.com/v1alpha1", kind: "InferencePolicy", metadata: { name: POLICY, namespace: TENANT }, spec: { tokenBudget: { perRequestTokens: 4000, hourlyTokens: 50000 } } },
    ] }));

    log(`baseline: ${N} namespaces + plain Deployments, created directly`);
    const plain = await baseline(api);
    log(`baseline: ${plain.reached}/${N} available in ${fmt(plain.seconds)} s`);
    const components: [string, number][] = [["controller", stack.controller.pid], ...(["etcd", "apiserver", "controller_manager", "scheduler", "kwok"] as const).map((n, i): [string, number] => [n, stack.cluster.local!.pids[i]!])];
    const cpu0 = components.map(([, pid]) => treeCpuMs(pid));
    const reconciles0 = reconcileLines(stack.controller.log);
    const requests0 = await apiserverRequests(api);
    const rssBefore = rssMiB(stack.controller.pid);
    peak = rssBefore;
    log(`kars: ${N} KarsSandboxes (controller RSS ${rssBefore.toFixed(0)} MiB before)`);
    const ours = await kars(api);
    peak = Math.max(peak, rssMiB(stack.controller.pid));
    for (const p of rssByProcess(stack.controller.pid)) log(`controller process ${p.pid} RSS ${p.mib.toFixed(0)} MiB: ${p.command}`);
    const cpu = components.map(([name, pid], i) => `${name}=${((treeCpuMs(pid) - cpu0[i]!) / 1000).toFixed(1)}`).join(" ");
    const pass = (ok: boolean) => (ok ? "pass" : "fail");
    console.log(`BENCH reconcile sandboxes=${N} ready=${ours.reached} ready_s=${fmt(ours.seconds)} baseline_plain_deployments_s=${fmt(plain.seconds)} ratio=${fmt(ours.seconds / plain.seconds)} target<60 ${pass(ours.seconds < 60)}`);
    console.log(`BENCH reconcile reconciles_per_sandbox=${((reconcileLines(stack.controller.log) - reconciles0) / N).toFixed(1)} cpu_s ${cpu} (information: CPU seconds each process used until every sandbox was Ready, on ${cpus().length} cores)`);
    console.log(`BENCH reconcile apiserver_requests_per_sandbox ${topRequests(requests0, await apiserverRequests(api), 10)} (information: the apiserver's ten costliest kinds of request while the sandboxes were reconciled, each as requests per sandbox / mean handling time; pods and Events from every writer)`);
    console.log(`BENCH reconcile controller_rss_mib=${peak.toFixed(0)} controller_rss_before_mib=${rssBefore.toFixed(0)} target<300 ${pass(peak < 300)}`);
  } finally {
    clearInterval(sampler);
    api.close();
    await stopStack(stack);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  e => {
    console.error(`bench:reconcile failed: ${e instanceof Error ? e.stack : String(e)}`);
    process.exit(1);
  },
);
