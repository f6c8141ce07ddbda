/**
 * Runs reconcile for KarsSandboxes: a de-duplicating work queue with bounded concurrency, retry
 * with exponential backoff (KFC's watch swallows callback errors, PITFALLS), a periodic resync of
 * every sandbox (watch streams drop), and the steps of one pass: finalizer → spec problems →
 * InferencePolicy projection (the sandbox's policy and its share of the tenant budget) →
 * server-side apply of the children that changed (applied-children.ts) → observe the Deployment →
 * status. Where a tenant budget is split, a sandbox appearing or disappearing re-reconciles its
 * namespace's other sandboxes (their share changes).
 */
import type { KubernetesObject, V1Deployment, V1Namespace } from "@kubernetes/client-node";
import { childKey, desiredDigest, unchangedSinceApply, type AppliedChildren, type AppliedState, type LiveChild } from "./applied-children";
import { API_VERSION, FINALIZER, LABEL_SANDBOX, LABEL_SANDBOX_NAMESPACE } from "../shared/constants";
import type { InferencePolicy } from "../shared/inferencepolicy-types";
import type { KarsSandbox } from "../shared/karssandbox-types";
import type { ReconcileConfig } from "./config";
import { inferenceProjection } from "./inference-policy-projection";
import { sandboxesToRequeue, tenantBudgetTotal } from "./tenant-budget";
import { desiredChildren, sandboxNamespaceName, AGENT_NAME } from "./desired-children";
import type { KubeApi, WrittenObject } from "./kube-api";
import { sandboxStatus, type Observation } from "./sandbox-status";
import { specProblem } from "./spec-problems";
import { sameJson } from "../shared/json-equal";

/** Minimal logger (pino-compatible). */
export interface ControllerLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** What one reconcile pass asks of the queue next. */
type Outcome = { requeueAfterMs?: number };

/**
 * Reconciles KarsSandboxes through a `KubeApi`: `enqueue` coalesces work per `namespace/name`, up to
 * `concurrency` (default 8) run at once, failures retry with backoff (1 s doubling to 60 s), and
 * `start` adds a periodic resync every `cfg.resyncMs`. Never throws to its caller.
 */
export class SandboxController {
  readonly #api: KubeApi;
  readonly #cfg: ReconcileConfig;
  readonly #log: ControllerLog;
  readonly #now: () => Date;
  readonly #pending = new Set<string>();
  readonly #running = new Set<string>();
  readonly #again = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #concurrency: number;
  /** The resourceVersion the controller's last write left each KarsSandbox at (see isOwnWrite). */
  readonly #ownWrites = new Map<string, string>();
  /** What the last successful pass applied for each sandbox (applied-children.ts). */
  readonly #applied = new Map<string, AppliedChildren>();
  #resync?: NodeJS.Timeout;
  #stopped = false;

  constructor(api: KubeApi, cfg: ReconcileConfig, log: ControllerLog, opts: { now?: () => Date; concurrency?: number } = {}) {
    this.#api = api;
    this.#cfg = cfg;
    this.#log = log;
    this.#now = opts.now ?? (() => new Date());
    this.#concurrency = opts.concurrency ?? 8;
  }

  /** Starts the periodic resync (and one immediately). */
  start(): void {
    const resync = (): void => {
      this.#api.listSandboxes().then(
        items => items.forEach(sb => this.enqueue(sb.metadata.namespace, sb.metadata.name)),
        (e: unknown) => this.#log.warn({ err: String(e) }, "resync list failed"),
      );
    };
    resync();
    this.#resync = setInterval(resync, this.#cfg.resyncMs);
    this.#resync.unref();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#resync) clearInterval(this.#resync);
    for (const t of this.#timers) clearTimeout(t);
  }

  /** Schedules a reconcile of `namespace/name` (coalesced with any pending one). */
  enqueue(namespace: string, name: string): void {
    if (this.#stopped) return;
    const key = `${namespace}/${name}`;
    if (this.#running.has(key)) {
      this.#again.add(key);
      return;
    }
    this.#pending.add(key);
    this.#pump();
  }

  /**
   * Re-reconciles the sandboxes an InferencePolicy change affects (tenant-budget.ts
   * `sandboxesToRequeue`): `policy` is the object as created, updated or last seen before deletion.
   * Never throws; a failed list is logged (the periodic resync catches up).
   */
  async enqueueForPolicy(policy: InferencePolicy): Promise<void> {
    try {
      const sandboxes = await this.#api.listSandboxes(policy.metadata.namespace);
      for (const name of sandboxesToRequeue(policy, sandboxes)) this.enqueue(policy.metadata.namespace, name);
    } catch (e) {
      this.#log.warn({ policy: `${policy.metadata.namespace}/${policy.metadata.name}`, err: e instanceof Error ? e.message : String(e) }, "could not list the sandboxes of an InferencePolicy");
    }
  }

  /**
   * Re-reconciles every other sandbox of `namespace`: N of the tenant-budget split changed. Only when
   * an InferencePolicy there declares a tenant budget: without one no sibling's profile depends on N,
   * and re-reconciling all N siblings for each sandbox created would make a sync of N sandboxes cost
   * N² reconciles (bench:reconcile).
   */
  async #enqueueSiblings(namespace: string, name: string, policies?: readonly InferencePolicy[]): Promise<void> {
    if (tenantBudgetTotal(policies ?? (await this.#api.listInferencePolicies(namespace))) === undefined) return;
    for (const s of await this.#api.listSandboxes(namespace)) if (s.metadata.name !== name) this.enqueue(namespace, s.metadata.name);
  }

  /**
   * Whether `resourceVersion` of KarsSandbox `namespace/name` is the one the controller's own last
   * write to it (finalizer, status) left: the watch event of that write, which needs no reconcile
   * (the pass that wrote it saw everything it changed). Any other writer's change has another
   * resourceVersion, so it is never taken for the controller's own; and a write is recorded only
   * when its answer shows the generation and labels the pass worked from and no deletion (#wrote):
   * after a watch gap the re-list emits only the newest version, which must not hide an edit or a
   * deletion made between the pass's read and its write.
   */
  isOwnWrite(namespace: string, name: string, resourceVersion: string | undefined): boolean {
    return resourceVersion !== undefined && this.#ownWrites.get(`${namespace}/${name}`) === resourceVersion;
  }

  #wrote(sb: KarsSandbox, out: WrittenObject): void {
    const key = `${sb.metadata.namespace}/${sb.metadata.name}`;
    const same = out.resourceVersion !== undefined && !out.deletionTimestamp && out.generation === sb.metadata.generation && sameJson(out.labels ?? {}, sb.metadata.labels ?? {});
    if (same) this.#ownWrites.set(key, out.resourceVersion!);
    else this.#ownWrites.delete(key);
  }

  /** Resolves when nothing is pending or running (tests, benchmarks). */
  async idle(): Promise<void> {
    while (this.#pending.size || this.#running.size) await new Promise(r => setTimeout(r, 20));
  }

  #later(key: string, ms: number): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      const [ns, name] = key.split("/") as [string, string];
      this.enqueue(ns, name);
    }, ms);
    t.unref();
    this.#timers.add(t);
  }

  #pump(): void {
    for (const key of this.#pending) {
      if (this.#running.size >= this.#concurrency) return;
      this.#pending.delete(key);
      this.#running.add(key);
      this.#reconcileKey(key)
        .then(
          out => {
            this.#failures.delete(key);
            if (out.requeueAfterMs !== undefined) this.#later(key, out.requeueAfterMs);
          },
          (e: unknown) => {
            const n = (this.#failures.get(key) ?? 0) + 1;
            this.#failures.set(key, n);
            const delay = Math.min(60_000, 500 * 2 ** Math.min(n, 7));
            this.#log.warn({ sandbox: key, err: e instanceof Error ? e.message : String(e), retryInMs: delay }, "reconcile failed; retrying");
            this.#later(key, delay);
          },
        )
        .finally(() => {
          this.#running.delete(key);
          if (this.#again.delete(key)) this.#pending.add(key);
          this.#pump();
        });
    }
  }

  async #reconcileKey(key: string): Promise<Outcome> {
    const [namespace, name] = key.split("/") as [string, string];
    const sb = await this.#api.get<KarsSandbox & { apiVersion: string; kind: string; metadata: { resourceVersion?: string } }>(
      API_VERSION, "KarsSandbox", name, namespace,
    );
    if (!sb) {
      this.#ownWrites.delete(key);
      this.#applied.delete(key);
      await this.#enqueueSiblings(namespace, name);
      return {};
    }
    if (sb.metadata.deletionTimestamp) {
      this.#applied.delete(key);
      return this.#finalize(sb);
    }
    const finalizers = sb.metadata.finalizers ?? [];
    let firstSightPolicies: InferencePolicy[] | undefined; // listed once for the siblings and this pass
    if (!finalizers.includes(FINALIZER)) {
      // First sight of this sandbox: the siblings' tenant-budget shares shrink now, not at resync;
      // its children follow in this same pass.
      this.#wrote(sb, await this.#api.setFinalizers(sb, [...finalizers, FINALIZER]));
      sb.metadata.finalizers = [...finalizers, FINALIZER];
      firstSightPolicies = await this.#api.listInferencePolicies(namespace);
      await this.#enqueueSiblings(namespace, name, firstSightPolicies);
    }
    const nsName = sandboxNamespaceName(sb);
    const problem = specProblem(sb, this.#cfg);
    if (problem) {
      this.#applied.delete(key);
      await this.#api.delete("apps/v1", "Deployment", AGENT_NAME, nsName);
      await this.#writeStatus(sb, { kind: "stalled", reason: problem.reason, message: problem.message });
      this.#log.info({ sandbox: key, reason: problem.reason }, "sandbox stalled");
      return {};
    }
    const existing = await this.#api.get<V1Namespace>("v1", "Namespace", nsName);
    const owner = existing?.metadata?.labels;
    if (existing && (owner?.[LABEL_SANDBOX] !== sb.metadata.name || owner?.[LABEL_SANDBOX_NAMESPACE] !== sb.metadata.namespace)) {
      await this.#writeStatus(sb, {
        kind: "stalled",
        reason: "NamespaceConflict",
        message: `namespace ${nsName} already exists and does not belong to this KarsSandbox (labels ${LABEL_SANDBOX}/${LABEL_SANDBOX_NAMESPACE}); rename the sandbox or remove that namespace`,
      });
      return {};
    }
    // the siblings only count for a tenant budget's split: not listed (N objects per reconcile) without one
    const policies = firstSightPolicies ?? (await this.#api.listInferencePolicies(namespace));
    const siblings = tenantBudgetTotal(policies) === undefined ? [] : await this.#api.listSandboxes(namespace);
    const inference = inferenceProjection(sb, policies, siblings, this.#cfg.upstreams);
    const policy = inference.policyLoaded;
    const children = desiredChildren(sb, this.#cfg, inference);
    const ordered = [children.namespace, children.serviceAccount, children.networkPolicy, children.routerProfile, children.deployment] as KubernetesObject[];
    // a child the last apply left as it is, with the same desired children, is not applied again (applied-children.ts)
    const digest = desiredDigest(ordered);
    const last = this.#applied.get(key);
    const applied: Record<string, AppliedState> = {};
    let dep: V1Deployment | undefined;
    try {
      for (const child of ordered) {
        const ck = childKey(child);
        if (last?.digest === digest) {
          const live = child === children.namespace ? existing : await this.#api.get<LiveChild>(child.apiVersion!, child.kind!, child.metadata!.name!, child.metadata!.namespace);
          if (unchangedSinceApply(child, live, last.children[ck])) {
            applied[ck] = last.children[ck]!;
            if (child === children.deployment) dep = live as V1Deployment;
            continue;
          }
        }
        applied[ck] = await this.#api.apply(child);
      }
    } catch (e) {
      this.#applied.delete(key);
      await this.#writeStatus(sb, { kind: "applyFailed", message: e instanceof Error ? e.message : String(e), namespace: nsName, policy }).catch(() => undefined);
      throw e;
    }
    this.#applied.set(key, { digest, children: applied });
    dep ??= await this.#api.get<V1Deployment>("apps/v1", "Deployment", AGENT_NAME, nsName);
    const obs = { ...observeDeployment(dep, !!sb.spec.suspended, nsName), policy };
    await this.#writeStatus(sb, obs);
    this.#log.info({ sandbox: key, generation: sb.metadata.generation, observation: obs.kind, policyLoaded: policy.reason }, "reconcile done");
    return obs.kind === "applied" && !obs.deploymentReady && !obs.suspended ? { requeueAfterMs: 10_000 } : {};
  }

  async #finalize(sb: KarsSandbox & { metadata: { resourceVersion?: string } }): Promise<Outcome> {
    const finalizers = sb.metadata.finalizers ?? [];
    if (!finalizers.includes(FINALIZER)) return {};
    const nsName = sandboxNamespaceName(sb);
    const ns = await this.#api.get<V1Namespace>("v1", "Namespace", nsName);
    const ours = ns?.metadata?.labels?.[LABEL_SANDBOX_NAMESPACE] === sb.metadata.namespace && ns?.metadata?.labels?.[LABEL_SANDBOX] === sb.metadata.name;
    if (ns && ours) {
      if (!ns.metadata?.deletionTimestamp) await this.#api.delete("v1", "Namespace", nsName);
      return { requeueAfterMs: 1000 };
    }
    await this.#api.setFinalizers(sb, finalizers.filter(f => f !== FINALIZER));
    this.#log.info({ sandbox: `${sb.metadata.namespace}/${sb.metadata.name}` }, "children removed; finalizer released");
    return {};
  }

  async #writeStatus(sb: KarsSandbox, obs: Observation): Promise<void> {
    const status = sandboxStatus(sb, obs, this.#now());
    if (sameJson(status, sb.status)) return;
    this.#wrote(sb, await this.#api.patchStatus(sb, status));
    // One Event per change of the Ready condition's reason, so `kubectl describe` and GitOps tools
    // show what happened without an Event per resync.
    const ready = status.conditions?.find(c => c.type === "Ready");
    const before = sb.status?.conditions?.find(c => c.type === "Ready");
    if (ready && (ready.reason !== before?.reason || ready.status !== before?.status)) {
      const type = obs.kind === "applied" && obs.policy?.status !== "False" ? "Normal" : "Warning";
      await this.#api.recordEvent(sb, type, ready.reason, ready.message).catch((e: unknown) =>
        this.#log.warn({ sandbox: `${sb.metadata.namespace}/${sb.metadata.name}`, err: e instanceof Error ? e.message : String(e) }, "could not record an Event"),
      );
    }
  }
}

/**
 * What the agent Deployment's status says: available, still progressing, or refused by admission
 * (the ReplicaSet's ReplicaFailure condition carries the webhook's message, DESIGN §5).
 */
export function observeDeployment(dep: V1Deployment | undefined, suspended: boolean, namespace: string): Observation {
  const failure = dep?.status?.conditions?.find(c => c.type === "ReplicaFailure" && c.status === "True");
  if (failure && !suspended && /denied the request/.test(failure.message ?? "")) {
    return { kind: "admissionDenied", message: failure.message ?? "", namespace };
  }
  const ready = (dep?.status?.availableReplicas ?? 0) >= 1 && (dep?.status?.observedGeneration ?? 0) >= (dep?.metadata?.generation ?? 0);
  return { kind: "applied", deploymentReady: ready, suspended, namespace };
}


