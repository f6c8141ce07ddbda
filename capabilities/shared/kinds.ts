/**
 * Pepr / kubernetes-fluent-client kind registration for the kars CRs. Runtime-only (imports pepr);
 * pure modules use the plain types in `karssandbox-types.ts`.
 */
import { a, RegisterKind } from "pepr";
import { GROUP, VERSION } from "./constants";
import type { KarsSandboxSpec, KarsSandboxStatus } from "./karssandbox-types";

/** KarsSandbox as a Pepr kind (`kars.azure.com/v1alpha1`, namespaced). */
export class KarsSandboxKind extends a.GenericKind {
  declare spec?: KarsSandboxSpec;
  declare status?: KarsSandboxStatus;
}

RegisterKind(KarsSandboxKind, { group: GROUP, version: VERSION, kind: "KarsSandbox", plural: "karssandboxes" });
