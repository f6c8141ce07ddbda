import type { KubernetesObject } from "@kubernetes/client-node";
import { childKey, desiredDigest, unchangedSinceApply, type AppliedState, type LiveChild } from "./applied-children";

const deployment: KubernetesObject = { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "agent", namespace: "kars-a", labels: { "kars.azure.com/sandbox": "a" }, annotations: { "kars.azure.com/x": "1" } } };
const networkPolicy: KubernetesObject = { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "kars-sandbox", namespace: "kars-a", labels: { "kars.azure.com/sandbox": "a" } } };
const last: AppliedState = { uid: "u1", resourceVersion: "10", generation: 2 };
const live = (m: NonNullable<LiveChild["metadata"]>): LiveChild => ({ metadata: { uid: "u1", ...m } });
const ours = { labels: { "kars.azure.com/sandbox": "a", team: "x" }, annotations: { "kars.azure.com/x": "1" } };

describe("unchangedSinceApply", () => {
  it.each<[string, KubernetesObject, LiveChild | undefined, AppliedState | undefined, boolean]>([
    ["nobody wrote it since (same resourceVersion)", networkPolicy, live({ resourceVersion: "10" }), last, true],
    ["someone wrote it since (resourceVersion moved)", networkPolicy, live({ resourceVersion: "11", generation: 2 }), last, false],
    ["a Deployment whose rollout moved only its status", deployment, live({ resourceVersion: "14", generation: 2, ...ours }), last, true],
    ["a Deployment whose spec someone changed (generation moved)", deployment, live({ resourceVersion: "14", generation: 3, ...ours }), last, false],
    ["a Deployment that lost a kars label", deployment, live({ resourceVersion: "14", generation: 2, labels: { team: "x" }, annotations: ours.annotations }), last, false],
    ["a Deployment whose kars annotation changed", deployment, live({ resourceVersion: "14", generation: 2, labels: ours.labels, annotations: { "kars.azure.com/x": "2" } }), last, false],
    ["a Deployment applied without a known generation", deployment, live({ resourceVersion: "14", generation: 2, ...ours }), { uid: "u1", resourceVersion: "10" }, false],
    ["a Deployment deleted and made again, same generation and labels (another uid)", deployment, live({ uid: "u2", resourceVersion: "14", generation: 2, ...ours }), last, false],
    ["made again, resourceVersion aside (another uid)", networkPolicy, live({ uid: "u2", resourceVersion: "10" }), last, false],
    ["applied without an answered uid", networkPolicy, live({ resourceVersion: "10" }), { resourceVersion: "10" }, false],
    ["being deleted", networkPolicy, live({ resourceVersion: "10", deletionTimestamp: "2026-12-01T00:00:00Z" }), last, false],
    ["gone", networkPolicy, undefined, last, false],
    ["never applied", networkPolicy, live({ resourceVersion: "10" }), undefined, false],
    ["applied without an answered resourceVersion", networkPolicy, live({ resourceVersion: "10" }), { uid: "u1", generation: 2 }, false],
  ])("%s → %s", (_what, desired, current, applied, expected) => {
    expect(unchangedSinceApply(desired, current, applied)).toBe(expected);
  });
});

describe("desiredDigest and childKey", () => {
  it("a digest follows content and order, not key order", () => {
    const a = desiredDigest([networkPolicy, deployment]);
    expect(desiredDigest([structuredClone(networkPolicy), structuredClone(deployment)])).toBe(a);
    expect(desiredDigest([{ kind: "NetworkPolicy", apiVersion: "networking.k8s.io/v1", metadata: networkPolicy.metadata }, deployment])).toBe(a);
    expect(desiredDigest([deployment, networkPolicy])).not.toBe(a);
    expect(desiredDigest([networkPolicy, { ...deployment, metadata: { ...deployment.metadata, labels: {} } }])).not.toBe(a);
  });
  it("names a child by apiVersion, kind, namespace and name", () => {
    expect(childKey(deployment)).toBe("apps/v1/Deployment/kars-a/agent");
    expect(childKey({ apiVersion: "v1", kind: "Namespace", metadata: { name: "kars-a" } })).toBe("v1/Namespace//kars-a");
  });
});
