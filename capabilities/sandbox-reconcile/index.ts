/**
 * Pepr capability: reconcile every KarsSandbox into its children (DESIGN §5). The bindings only
 * enqueue; `SandboxController` does the work with retries and a periodic resync.
 */
import { Capability, a, Log } from "pepr";
import { FIELD_MANAGER, LABEL_SANDBOX, LABEL_SANDBOX_NAMESPACE } from "../shared/constants";
import { KarsSandboxKind } from "../shared/kinds";
import { parseReconcileConfig } from "./config";
import { createKubeApi } from "./kube-api";
import { SandboxController } from "./sandbox-controller";

export const SandboxReconcile = new Capability({
  name: "sandbox-reconcile",
  description: "Reconciles KarsSandboxes into a locked-down namespace, ServiceAccount, NetworkPolicy, router profile and Deployment.",
  namespaces: [],
});

const { When } = SandboxReconcile;
const log = Log.child({ component: "reconcile.sandbox" });

let controller: SandboxController | undefined;
const ready: Promise<SandboxController> | undefined =
  process.env.PEPR_MODE === "build"
    ? undefined
    : createKubeApi(FIELD_MANAGER).then(api => {
        controller = new SandboxController(api, parseReconcileConfig(process.env), log);
        controller.start();
        return controller;
      });

function enqueue(namespace: string | undefined, name: string | undefined): void {
  if (!namespace || !name) return;
  if (controller) controller.enqueue(namespace, name);
  else void ready?.then(c => c.enqueue(namespace, name));
}

// Why: every create, spec edit or deletion (deletionTimestamp) of a KarsSandbox is a reconcile.
When(KarsSandboxKind)
  .IsCreatedOrUpdated()
  .Reconcile(sb => enqueue(sb.metadata?.namespace, sb.metadata?.name));

// Why: the agent Deployment's progress (available, or pods refused by admission) feeds the status.
When(a.Deployment)
  .IsCreatedOrUpdated()
  .WithLabel(LABEL_SANDBOX)
  .Watch(d => enqueue(d.metadata?.labels?.[LABEL_SANDBOX_NAMESPACE], d.metadata?.labels?.[LABEL_SANDBOX]));
