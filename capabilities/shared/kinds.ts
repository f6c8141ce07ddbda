/**
 * Pepr / kubernetes-fluent-client kind registration for the kars CRs. Runtime-only (imports pepr);
 * pure modules use the plain types in `karssandbox-types.ts` and `inferencepolicy-types.ts`.
 */
import { a, RegisterKind } from "pepr";
import { GROUP, VERSION } from "./constants";
import type { InferencePolicySpec } from "./inferencepolicy-types";
import type { KarsImagePolicySpec } from "./karsimagepolicy-types";
import type { KarsSandboxSpec, KarsSandboxStatus } from "./karssandbox-types";

/** KarsSandbox as a Pepr kind (`kars.azure.com/v1alpha1`, namespaced). */
export class KarsSandboxKind extends a.GenericKind {
  declare spec?: KarsSandboxSpec;
  declare status?: KarsSandboxStatus;
}

RegisterKind(KarsSandboxKind, { group: GROUP, version: VERSION, kind: "KarsSandbox", plural: "karssandboxes" });

/** InferencePolicy as a Pepr kind (`kars.azure.com/v1alpha1`, namespaced, DESIGN §3). */
export class InferencePolicyKind extends a.GenericKind {
  declare spec?: InferencePolicySpec;
}

RegisterKind(InferencePolicyKind, { group: GROUP, version: VERSION, kind: "InferencePolicy", plural: "inferencepolicies" });

/** KarsImagePolicy as a Pepr kind (`kars.azure.com/v1alpha1`, cluster-scoped, DESIGN §3). */
export class KarsImagePolicyKind extends a.GenericKind {
  declare spec?: KarsImagePolicySpec;
}

RegisterKind(KarsImagePolicyKind, { group: GROUP, version: VERSION, kind: "KarsImagePolicy", plural: "karsimagepolicies" });
