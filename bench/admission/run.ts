/**
 * `npm run bench:admission` (DESIGN §8), on the local control plane:
 *  1. server side: AdmissionReviews for a sandbox pod POSTed straight to the kars webhook server
 *     (mutate, then validate), paced at 500 req/s; target p99 < 2 ms. Baseline named beside it: the
 *     same HTTPS round trip to the server's /healthz (what any webhook costs before it does work).
 *  2. through the apiserver: pod creates in a sandbox namespace (webhooks on) vs an unlabelled
 *     namespace (no webhook), same client, same apiserver; target: overhead p99 < 10 ms.
 * Ends with one `BENCH admission …` line per target. Environment: BENCH_N (default 1000 reviews),
 * BENCH_PODS (default 200 creates per namespace).
 */
import https from "node:https";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { startStack, stopStack, type Stack } from "../../tests/e2e-kind/stack";
import { applyPatch } from "fast-json-patch";
import { kubectl } from "../../tests/e2e-kind/kubectl";
import { quantile } from "../router/measure";
import { apiserverClient } from "../apiserver-client";

const N = Number(process.env.BENCH_N ?? 1000);
const PODS = Number(process.env.BENCH_PODS ?? 200);

function post(agent: https.Agent, url: string, body: string, extra: https.RequestOptions = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: body ? "POST" : "GET", agent, headers: body ? { "content-type": "application/json" } : {}, ...extra }, res => {
      let b = "";
      res.on("data", (d: Buffer) => (b += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: b }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

function review(pod: object, namespace: string): string {
  return JSON.stringify({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: randomUUID(), kind: { group: "", version: "v1", kind: "Pod" }, resource: { group: "", version: "v1", resource: "pods" },
      namespace, operation: "CREATE", userInfo: { username: "bench" }, object: pod, dryRun: false,
    },
  });
}

const samplePod = (ns: string) => ({ apiVersion: "v1", kind: "Pod", metadata: { name: "bench", namespace: ns }, spec: { containers: [{ name: "agent", image: "example.com/agent:1" }] } });

async function paced(n: number, perSecond: number, f: () => Promise<void>): Promise<number[]> {
  const out: number[] = [];
  const gap = 1000 / perSecond;
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const due = start + i * gap;
    const wait = due - performance.now();
    if (wait > 0) await new Promise(r => setTimeout(r, wait));
    const t = performance.now();
    await f();
    out.push(performance.now() - t);
  }
  return out;
}

async function serverSide(stack: Stack, ns: string): Promise<void> {
  const agent = new https.Agent({ keepAlive: true, ca: readFileSync(stack.cluster.pki.caCert) });
  const base = `https://127.0.0.1:${stack.controller.port}`;
  const { apiPath } = stack.controller;
  const pod = samplePod(ns);
  // Warm up (namespace cache, JIT).
  for (let i = 0; i < 50; i++) {
    await post(agent, `${base}/mutate/${apiPath}`, review(pod, ns));
    await post(agent, `${base}/validate/${apiPath}`, review(pod, ns));
  }
  let mutated: object = pod;
  const check = await post(agent, `${base}/mutate/${apiPath}`, review(pod, ns));
  const patch = JSON.parse(check.body).response?.patch;
  if (!patch) throw new Error(`mutate returned no patch: ${check.body.slice(0, 300)}`);
  mutated = applyPatch(structuredClone(pod), JSON.parse(Buffer.from(patch, "base64").toString())).newDocument;
  const v = JSON.parse((await post(agent, `${base}/validate/${apiPath}`, review(mutated, ns))).body);
  if (!v.response?.allowed) throw new Error(`validate denied the mutated pod: ${JSON.stringify(v.response?.status)}`);

  const both = await paced(N, 500, async () => {
    await post(agent, `${base}/mutate/${apiPath}`, review(pod, ns));
    await post(agent, `${base}/validate/${apiPath}`, review(mutated, ns));
  });
  const health = await paced(N, 500, async () => {
    await post(agent, `${base}/healthz`, "");
    await post(agent, `${base}/healthz`, "");
  });
  const p99 = quantile(both, 0.99);
  const base99 = quantile(health, 0.99);
  console.log(`BENCH admission webhook_mutate_validate_p99_ms=${p99.toFixed(2)} p50_ms=${quantile(both, 0.5).toFixed(2)} healthz_roundtrip_p99_ms=${base99.toFixed(2)} ratio=${(p99 / base99).toFixed(2)} rate=500/s target<2 ${p99 < 2 ? "pass" : "fail"}`);
  agent.destroy();
}

async function throughApiserver(stack: Stack, sandboxNs: string, plainNs: string): Promise<void> {
  const api = apiserverClient(stack.cluster.kubeconfig);
  const create = async (ns: string, i: number) => {
    const r = await api.request("POST", `/api/v1/namespaces/${ns}/pods`, { ...samplePod(ns), metadata: { name: `bench-${i}`, namespace: ns } });
    if (r.status !== 201) throw new Error(`create in ${ns} answered ${r.status}: ${r.body.slice(0, 300)}`);
  };
  const run = async (ns: string, offset: number) => {
    const xs: number[] = [];
    for (let i = 0; i < PODS; i++) {
      const t = performance.now();
      await create(ns, offset + i);
      xs.push(performance.now() - t);
    }
    return xs;
  };
  await run(plainNs, 100_000).then(() => run(sandboxNs, 100_000)); // warm-up round, discarded
  const without = await run(plainNs, 0);
  const withKars = await run(sandboxNs, 0);
  const over = quantile(withKars, 0.99) - quantile(without, 0.99);
  console.log(`BENCH admission pod_create_p99_ms=${quantile(withKars, 0.99).toFixed(2)} without_kars_p99_ms=${quantile(without, 0.99).toFixed(2)} overhead_p99_ms=${over.toFixed(2)} ratio=${(quantile(withKars, 0.99) / quantile(without, 0.99)).toFixed(2)} target<10 ${over < 10 ? "pass" : "fail"}`);
  api.close();
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "kars-bench-admission-"));
  const stack = await startStack("local", dir);
  try {
    const k = kubectl(stack.cluster.kubectlBin, stack.cluster.kubeconfig);
    k.ok(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: [
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "kars-bench", labels: { "kars.azure.com/role": "sandbox", "kars.azure.com/sandbox": "bench", "kars.azure.com/isolation": "standard" } } },
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "plain-bench" } },
    ] }));
    for (let i = 0; i < 100 && (k(["get", "sa", "default", "-n", "kars-bench"]).code !== 0 || k(["get", "sa", "default", "-n", "plain-bench"]).code !== 0); i++) await new Promise(r => setTimeout(r, 200));
    await serverSide(stack, "kars-bench");
    await throughApiserver(stack, "kars-bench", "plain-bench");
  } finally {
    await stopStack(stack);
  }
}

main().catch(e => {
  console.error(`bench:admission failed: ${e instanceof Error ? e.stack : String(e)}`);
  process.exit(1);
});
