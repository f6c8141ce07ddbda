/**
 * Mutating step for sandbox pods (DESIGN §4 "Mutate"): injects egress-guard (first init container)
 * and the inference-router sidecar when absent, sets every *unset* securityContext field to its
 * hardened value, adds emptyDirs for the sandbox's writable paths and the agent's OPENAI_BASE_URL,
 * and sets seccomp / runtimeClassName per isolation.
 *
 * Never weakens a value the user set and never rewrites a value the user set to something
 * insecure: those are left for `postureViolations` to deny, so the user learns why. Idempotent:
 * hardening an already hardened pod returns an equal pod. Pure: the input is not modified.
 */
import type { V1Container, V1Pod, V1PodSpec, V1SecurityContext, V1Volume } from "@kubernetes/client-node";
import { AGENT_UID, EGRESS_GUARD, INFERENCE_ROUTER } from "../shared/constants";
import type { AdmissionConfig, SandboxContext } from "./config";
import { desiredEgressGuard, desiredRouterSidecar, desiredRouterVolumes } from "./injected-containers";
import { requiredSeccompProfile } from "./seccomp";

/** The agent's inference endpoint: the router on loopback (DESIGN §2). */
export const OPENAI_BASE_URL = "http://127.0.0.1:8443/v1";

/** Returns the hardened copy of `pod` for the sandbox `ctx`. */
export function hardenSandboxPod(pod: V1Pod, ctx: SandboxContext, cfg: AdmissionConfig): V1Pod {
  const out: V1Pod = structuredClone(pod);
  const spec: V1PodSpec = out.spec ?? { containers: [] };
  out.spec = spec;

  stripAutomountedToken(spec);
  injectContainers(spec, cfg);
  hardenPodSecurityContext(spec, ctx, cfg);
  const podUserSet = pod.spec?.securityContext?.runAsUser !== undefined;
  const podNonRootSet = pod.spec?.securityContext?.runAsNonRoot !== undefined;
  for (const c of spec.containers) {
    if (c.name === INFERENCE_ROUTER) continue;
    hardenContainer(c, podUserSet, podNonRootSet);
    addBaseUrl(c);
    addWritablePaths(spec, c, ctx.writablePaths);
  }
  for (const c of spec.initContainers ?? []) {
    if (c.name === EGRESS_GUARD) continue;
    hardenContainer(c, podUserSet, podNonRootSet);
  }
  return out;
}

/** Name pattern of the token volume the apiserver's ServiceAccount admission plugin adds. */
const AUTOMOUNTED_TOKEN_VOLUME = /^kube-api-access-[a-z0-9]{5}$/;

/**
 * Removes the ServiceAccount token the apiserver's ServiceAccount admission plugin mounted on its
 * own (it runs before webhooks) unless the user explicitly asked for one with
 * automountServiceAccountToken: true, which Validate then refuses. DESIGN §2: no token for the agent.
 */
function stripAutomountedToken(spec: V1PodSpec): void {
  if (spec.automountServiceAccountToken === true) return;
  const auto = new Set(
    (spec.volumes ?? []).filter(v => AUTOMOUNTED_TOKEN_VOLUME.test(v.name) && v.projected?.sources?.some(s => s.serviceAccountToken)).map(v => v.name),
  );
  if (auto.size === 0) return;
  spec.volumes = (spec.volumes ?? []).filter(v => !auto.has(v.name));
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
    if (c.volumeMounts) c.volumeMounts = c.volumeMounts.filter(m => !auto.has(m.name));
  }
  spec.automountServiceAccountToken = false;
}

function injectContainers(spec: V1PodSpec, cfg: AdmissionConfig): void {
  const init = spec.initContainers ?? [];
  if (!init.some(c => c.name === EGRESS_GUARD)) spec.initContainers = [desiredEgressGuard(cfg), ...init];
  if (!spec.containers.some(c => c.name === INFERENCE_ROUTER)) {
    spec.containers = [...spec.containers, desiredRouterSidecar(cfg)];
  }
  for (const v of desiredRouterVolumes()) addVolume(spec, v);
}

function hardenPodSecurityContext(spec: V1PodSpec, ctx: SandboxContext, cfg: AdmissionConfig): void {
  const sc = (spec.securityContext ??= {});
  sc.runAsNonRoot ??= true;
  sc.fsGroup ??= AGENT_UID;
  sc.seccompProfile ??= requiredSeccompProfile(ctx.isolation);
  spec.automountServiceAccountToken ??= false;
  if (ctx.isolation === "confidential") spec.runtimeClassName ??= cfg.confidentialRuntimeClass;
}

/**
 * Fills unset container securityContext fields with the agent's hardened values. runAsUser and
 * runAsNonRoot are left alone when the user set them at pod level: overriding the user's own pod-level
 * choice per container would be a silent rewrite (a root pod-level value is denied by Validate).
 */
function hardenContainer(c: V1Container, podUserSet: boolean, podNonRootSet: boolean): void {
  const sc: V1SecurityContext = (c.securityContext ??= {});
  sc.privileged ??= false;
  // The apiserver refuses allowPrivilegeEscalation=false beside privileged or CAP_SYS_ADMIN; leave
  // it unset there so the user sees kars' denial naming the real problem, not a validation error.
  const sysAdmin = (sc.capabilities?.add ?? []).some(c => c === "SYS_ADMIN" || c === "CAP_SYS_ADMIN");
  if (sc.privileged !== true && !sysAdmin) sc.allowPrivilegeEscalation ??= false;
  sc.readOnlyRootFilesystem ??= true;
  if (!podNonRootSet) sc.runAsNonRoot ??= true;
  if (!podUserSet) sc.runAsUser ??= AGENT_UID;
  sc.capabilities ??= {};
  sc.capabilities.drop ??= ["ALL"];
}

function addBaseUrl(c: V1Container): void {
  const env = (c.env ??= []);
  if (!env.some(e => e.name === "OPENAI_BASE_URL")) env.push({ name: "OPENAI_BASE_URL", value: OPENAI_BASE_URL });
}

/** Mounts an emptyDir at each writable path the container does not mount already. */
function addWritablePaths(spec: V1PodSpec, c: V1Container, paths: readonly string[]): void {
  const mounts = (c.volumeMounts ??= []);
  paths.forEach((path, i) => {
    if (mounts.some(m => m.mountPath === path)) return;
    const name = `kars-writable-${i}`;
    addVolume(spec, { name, emptyDir: {} });
    mounts.push({ name, mountPath: path });
  });
  if (mounts.length === 0) delete c.volumeMounts;
}

function addVolume(spec: V1PodSpec, v: V1Volume): void {
  const vols = (spec.volumes ??= []);
  if (!vols.some(x => x.name === v.name)) vols.push(v);
}
