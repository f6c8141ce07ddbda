/**
 * The reconciler's only door to the apiserver. Children are written by server-side apply with one
 * field manager (`kars-controller`, force: kars owns these fields); status and finalizers through
 * merge patches. The interface lets tests hand in an in-memory fake.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { API_VERSION, GROUP, VERSION } from "../shared/constants";
import type { InferencePolicy } from "../shared/inferencepolicy-types";
import type { KarsSandbox, KarsSandboxStatus } from "../shared/karssandbox-types";
import type { AppliedState } from "./applied-children";
import { reuseConnections } from "./kube-connections";

/** Apiserver operations used by `SandboxController`. Errors are thrown as `KubeApiError`. */
export interface KubeApi {
  /** Server-side apply of a full desired object; answers what it left the object at. */
  apply(obj: KubernetesObject): Promise<AppliedState>;
  /** Reads an object; undefined when it does not exist. */
  get<T extends object>(apiVersion: string, kind: string, name: string, namespace?: string): Promise<T | undefined>;
  /** Deletes an object (background propagation); a missing object is not an error. */
  delete(apiVersion: string, kind: string, name: string, namespace?: string): Promise<void>;
  /** Replaces `status` of a KarsSandbox through the status subresource. */
  patchStatus(sb: KarsSandbox, status: KarsSandboxStatus): Promise<WrittenObject>;
  /** Sets `metadata.finalizers` of a KarsSandbox (optimistic: fails on a stale resourceVersion). */
  setFinalizers(sb: KarsSandbox & { metadata: { resourceVersion?: string } }, finalizers: string[]): Promise<WrittenObject>;
  /**
   * Every KarsSandbox in `namespace` (a consistent read: a tenant budget's split must count every
   * sandbox there is), or in the cluster when it is absent (the periodic resync, which only enqueues:
   * served from the apiserver's watch cache, `resourceVersion=0`).
   */
  listSandboxes(namespace?: string): Promise<KarsSandbox[]>;
  /** Every InferencePolicy in `namespace` (a consistent read: a tightened policy must be the one projected). */
  listInferencePolicies(namespace: string): Promise<InferencePolicy[]>;
  /** Records a core/v1 Event about a KarsSandbox (what `kubectl describe` shows). */
  recordEvent(sb: KarsSandbox, type: "Normal" | "Warning", reason: string, message: string): Promise<void>;
}

/** The metadata a write left a KarsSandbox with, as the apiserver answered it (fields absent when it carried none). */
export interface WrittenObject {
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  deletionTimestamp?: string;
}

function written(o: { metadata?: WrittenObject } | undefined): WrittenObject {
  const m = o?.metadata ?? {};
  return { resourceVersion: m.resourceVersion, generation: m.generation, labels: m.labels, deletionTimestamp: m.deletionTimestamp };
}

/** An apiserver error with its HTTP status (0 when the request never got an answer). */
export class KubeApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "KubeApiError";
  }
}

/** Creates the real KubeApi from the ambient kubeconfig (KUBECONFIG or in-cluster). */
export async function createKubeApi(fieldManager: string): Promise<KubeApi> {
  const k8s = await import("@kubernetes/client-node");
  const kc = new k8s.KubeConfig();
  kc.loadFromDefault();
  reuseConnections(kc);
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const merge = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
  const wrap = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      const code = (e as { code?: number }).code ?? 0;
      const body = (e as { body?: unknown }).body;
      const msg = typeof body === "string" ? body : body ? JSON.stringify(body) : (e as Error).message;
      throw new KubeApiError(`${what}: ${msg}`, code, { cause: e });
    }
  };
  const plural = { group: GROUP, version: VERSION, plural: "karssandboxes" };
  return {
    apply: obj =>
      wrap(`apply ${obj.kind} ${obj.metadata?.namespace ?? ""}/${obj.metadata?.name}`, async () => {
        const out = (await objects.patch(obj, undefined, undefined, fieldManager, true, k8s.PatchStrategy.ServerSideApply)) as { metadata?: { uid?: string; resourceVersion?: string; generation?: number } };
        return { uid: out?.metadata?.uid, resourceVersion: out?.metadata?.resourceVersion, generation: out?.metadata?.generation };
      }),
    get: async <T extends object>(apiVersion: string, kind: string, name: string, namespace?: string) => {
      try {
        return (await objects.read({ apiVersion, kind, metadata: { name, namespace } } as never)) as T;
      } catch (e) {
        if ((e as { code?: number }).code === 404) return undefined;
        throw new KubeApiError(`get ${kind} ${namespace ?? ""}/${name}: ${(e as Error).message}`, (e as { code?: number }).code ?? 0, { cause: e });
      }
    },
    delete: async (apiVersion, kind, name, namespace) => {
      try {
        await objects.delete({ apiVersion, kind, metadata: { name, namespace } }, undefined, undefined, undefined, undefined, "Background");
      } catch (e) {
        if ((e as { code?: number }).code === 404) return;
        throw new KubeApiError(`delete ${kind} ${namespace ?? ""}/${name}: ${(e as Error).message}`, (e as { code?: number }).code ?? 0, { cause: e });
      }
    },
    patchStatus: (sb, status) =>
      wrap(`status of KarsSandbox ${sb.metadata.namespace}/${sb.metadata.name}`, async () => {
        const out = (await custom.patchNamespacedCustomObjectStatus({ ...plural, namespace: sb.metadata.namespace, name: sb.metadata.name, body: { status } }, merge)) as { metadata?: WrittenObject };
        return written(out);
      }),
    setFinalizers: (sb, finalizers) =>
      wrap(`finalizers of KarsSandbox ${sb.metadata.namespace}/${sb.metadata.name}`, async () => {
        const out = (await custom.patchNamespacedCustomObject(
          { ...plural, namespace: sb.metadata.namespace, name: sb.metadata.name, body: { metadata: { finalizers, resourceVersion: sb.metadata.resourceVersion } } },
          merge,
        )) as { metadata?: WrittenObject };
        return written(out);
      }),
    recordEvent: (sb, type, reason, message) =>
      wrap(`event on KarsSandbox ${sb.metadata.namespace}/${sb.metadata.name}`, async () => {
        const now = new Date().toISOString();
        await core.createNamespacedEvent({
          namespace: sb.metadata.namespace,
          body: {
            metadata: { generateName: `${sb.metadata.name}.`, namespace: sb.metadata.namespace },
            involvedObject: { apiVersion: API_VERSION, kind: "KarsSandbox", name: sb.metadata.name, namespace: sb.metadata.namespace, uid: sb.metadata.uid },
            type,
            reason,
            message: message.slice(0, 1024),
            source: { component: fieldManager },
            reportingComponent: fieldManager,
            reportingInstance: fieldManager,
            firstTimestamp: now as unknown as Date,
            lastTimestamp: now as unknown as Date,
            count: 1,
          },
        });
      }),
    listSandboxes: namespace =>
      wrap(`list KarsSandboxes${namespace ? ` in ${namespace}` : ""}`, async () => {
        const list = (namespace ? await custom.listNamespacedCustomObject({ ...plural, namespace }) : await custom.listClusterCustomObject({ ...plural, resourceVersion: "0" })) as { items: KarsSandbox[] };
        return list.items;
      }),
    listInferencePolicies: namespace =>
      wrap(`list InferencePolicies in ${namespace}`, async () => {
        const list = (await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: "inferencepolicies", namespace })) as { items: InferencePolicy[] };
        return list.items;
      }),
  };
}
