/**
 * Pepr capability: reconcile every KarsSandbox into its children (DESIGN §5). The bindings only
 * enqueue; `SandboxController` does the work with retries and a periodic resync.
 */
import { Capability, a, Log } from "pepr";
import { FIELD_MANAGER, LABEL_SANDBOX, LABEL_SANDBOX_NAMESPACE } from "../shared/constants";
import { shedManagedFields } from "../shared/watch-cache";
import type { InferencePolicy } from "../shared/inferencepolicy-types";
import { InferencePolicyKind, KarsSandboxKind } from "../shared/kinds";
import { parseReconcileConfig } from "./config";
import { createKubeApi } from "./kube-api";
import { SandboxController } from "./sandbox-controller";

/** The reconcile capability (KarsSandbox and its labelled children). */
export const SandboxReconcile = new Capability({
  name: "sandbox-reconcile",
  description: "Reconciles KarsSandboxes into a locked-down namespace, ServiceAccount, NetworkPolicy, router profile and Deployment.",
  namespaces: [],
});

const { When } = SandboxReconcile;
const log = Log.child({ component: "reconcile.sandbox" }, { level: process.env.KARS_LOG_LEVEL ?? "info" });

let controller: SandboxController | undefined;
const ready: Promise<SandboxController> | undefined =
  process.env.PEPR_MODE === "build"
    ? undefined
    : createKubeApi(FIELD_MANAGER).then(
        api => {
          controller = new SandboxController(api, parseReconcileConfig(process.env), log);
          controller.start();
          return controller;
        },
        (err: unknown) => {
          // Without an apiserver client nothing can be reconciled: say why and stop the process.
          log.error({ err: err instanceof Error ? err.message : String(err) }, "cannot start the sandbox controller");
          process.exit(1);
        },
      );

function enqueue(namespace: string | undefined, name: string | undefined): void {
  if (!namespace || !name) return;
  if (controller) controller.enqueue(namespace, name);
  else void ready?.then(c => c.enqueue(namespace, name));
}

// Why: every create, spec edit or deletion (deletionTimestamp) of a KarsSandbox is a reconcile;
// the events of the controller's own finalizer and status writes are not (isOwnWrite).
When(KarsSandboxKind)
  .IsCreatedOrUpdated()
  .Reconcile(sb => {
    const { namespace, name, resourceVersion } = shedManagedFields(sb).metadata ?? {};
    if (namespace && name && controller?.isOwnWrite(namespace, name, resourceVersion)) return;
    enqueue(namespace, name);
  });

// Why: a deleted sandbox changes N of its namespace's tenant-budget split; reconciling its key
// (now gone) re-reconciles its siblings.
When(KarsSandboxKind)
  .IsDeleted()
  .Watch(sb => enqueue(shedManagedFields(sb).metadata?.namespace, sb.metadata?.name));

// Why: an InferencePolicy edit (budget, content safety, models, tenant budget) or its creation or
// deletion changes the router profile of the sandboxes that name it, and, when it declares a
// tenant budget, every sandbox of its namespace (tenant-budget.ts decides which).
const policyChanged = (p: InferencePolicyKind): void => {
  shedManagedFields(p);
  if (!p.metadata?.namespace || !p.metadata.name) return;
  const policy = { metadata: { name: p.metadata.name, namespace: p.metadata.namespace }, spec: p.spec ?? {} } as InferencePolicy;
  if (controller) void controller.enqueueForPolicy(policy);
  else void ready?.then(c => c.enqueueForPolicy(policy));
};
When(InferencePolicyKind).IsCreatedOrUpdated().Watch(policyChanged);
When(InferencePolicyKind).IsDeleted().Watch(policyChanged);

const owner = (o: { metadata?: { labels?: Record<string, string> } }): void =>
  enqueue(shedManagedFields(o).metadata?.labels?.[LABEL_SANDBOX_NAMESPACE], o.metadata?.labels?.[LABEL_SANDBOX]);

// Why: the agent Deployment's progress (available, or pods refused by admission) feeds the status,
// and an edited or deleted Deployment is drift to correct.
When(a.Deployment).IsCreatedOrUpdated().WithLabel(LABEL_SANDBOX).Watch(owner);
When(a.Deployment).IsDeleted().WithLabel(LABEL_SANDBOX).Watch(owner);

// Why: a relabelled namespace (e.g. isolation lowered, role removed) or an edited/deleted
// NetworkPolicy, router profile or ServiceAccount weakens the sandbox: put it back at once rather
// than at the next periodic resync.
When(a.Namespace).IsUpdated().WithLabel(LABEL_SANDBOX).Watch(owner);
When(a.NetworkPolicy).IsUpdated().WithLabel(LABEL_SANDBOX).Watch(owner);
When(a.NetworkPolicy).IsDeleted().WithLabel(LABEL_SANDBOX).Watch(owner);
When(a.ConfigMap).IsUpdated().WithLabel(LABEL_SANDBOX).Watch(owner);
When(a.ConfigMap).IsDeleted().WithLabel(LABEL_SANDBOX).Watch(owner);
When(a.ServiceAccount).IsUpdated().WithLabel(LABEL_SANDBOX).Watch(owner);
