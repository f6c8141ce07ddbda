/**
 * Validating step for sandbox pods (DESIGN §4 "Validate"): every way a pod is weaker than the
 * sandbox posture, as violations with field paths. Covers the Pod Security Standards baseline and
 * restricted levels (https://kubernetes.io/docs/concepts/security/pod-security-standards/) plus kars'
 * own rules: reserved container names, injected containers present and exact, read-only root
 * filesystem, seccomp per isolation, procMount Default even for user-namespaced pods.
 *
 * Input is the pod as it will be stored (after mutation); attacker-controlled. Fails closed: a
 * field of an unexpected shape is a violation, never a pass.
 */
import type { V1Container, V1Pod, V1PodSecurityContext, V1Probe, V1SecurityContext } from "@kubernetes/client-node";
import { AGENT_UID, EGRESS_GUARD, INFERENCE_ROUTER, POSTURE_RULE } from "../shared/constants";
import type { Violation } from "../shared/violation";
import type { AdmissionConfig, SandboxContext } from "./config";
import { desiredEgressGuard, desiredRouterSidecar, desiredRouterVolumes, isExactInjected, ROUTER_CONFIG_VOLUME, ROUTER_STATE_VOLUME } from "./injected-containers";
import { sameJson } from "../shared/json-equal";
import { isSystemPath } from "./system-paths";
import { describeSeccomp, requiredSeccompProfile } from "./seccomp";

const RULE_PSS = "pod security standards";
const ROUTER_ONLY_VOLUMES = new Set([ROUTER_CONFIG_VOLUME, ROUTER_STATE_VOLUME]);
const RULE_RESERVED = "kars reserved container";

/** Volume sources allowed by PSS restricted (plus `image`, read-only by construction). */
const ALLOWED_VOLUME_SOURCES = new Set([
  "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret", "image",
]);

/** Sysctls PSS baseline calls safe. */
const SAFE_SYSCTLS = new Set([
  "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
  "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
  "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
  "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
  "net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat",
]);

const ALLOWED_SELINUX_TYPES = new Set(["", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"]);

type ContainerList = "containers" | "initContainers" | "ephemeralContainers";

/** Returns every posture violation of `pod` (empty when it may be admitted). */
export function postureViolations(pod: V1Pod, ctx: SandboxContext, cfg: AdmissionConfig): Violation[] {
  const out: Violation[] = [];
  const add = (path: string, message: string, rule = POSTURE_RULE): void => {
    out.push({ path, message, rule });
  };
  const spec = pod.spec;
  if (!spec || !Array.isArray(spec.containers)) {
    add("spec.containers", "must be a list of containers");
    return out;
  }

  if (spec.hostNetwork === true) add("spec.hostNetwork", "must be false");
  if (spec.hostPID === true) add("spec.hostPID", "must be false");
  if (spec.hostIPC === true) add("spec.hostIPC", "must be false");
  if ((spec.ephemeralContainers?.length ?? 0) > 0) add("spec.ephemeralContainers", "ephemeral containers are not allowed in a sandbox");
  // DESIGN §2: the agent never holds a credential, so no ServiceAccount token in any form.
  if (spec.automountServiceAccountToken === true) add("spec.automountServiceAccountToken", "must not be true (the agent never holds a credential)");
  // A shared PID namespace would let the agent see the router's processes and arguments.
  if (spec.shareProcessNamespace === true) add("spec.shareProcessNamespace", "must not be true (the agent must not see the router's processes)");
  if (ctx.isolation === "confidential" && spec.runtimeClassName !== cfg.confidentialRuntimeClass) {
    add("spec.runtimeClassName", `must be ${cfg.confidentialRuntimeClass} for isolation confidential, found ${spec.runtimeClassName ?? "unset"}`);
  } else if (ctx.isolation !== "confidential" && spec.runtimeClassName !== undefined) {
    add("spec.runtimeClassName", `must be unset for isolation ${ctx.isolation} (the runtime follows the sandbox's isolation)`);
  }
  // Names and DNS the router relies on must not be redirected from inside the pod spec.
  if ((spec.hostAliases?.length ?? 0) > 0) add("spec.hostAliases", "must be empty (would redirect the router's upstream and egress names)");
  if (spec.dnsPolicy !== undefined && spec.dnsPolicy !== "ClusterFirst") add("spec.dnsPolicy", `must be ClusterFirst, found ${spec.dnsPolicy}`);
  if ((spec.dnsConfig?.nameservers?.length ?? 0) > 0) add("spec.dnsConfig.nameservers", "must be empty (the egress guard allows cluster DNS only)");
  if (spec.priorityClassName?.startsWith("system-")) add("spec.priorityClassName", `${spec.priorityClassName} is reserved for cluster components`);

  const psc: V1PodSecurityContext = spec.securityContext ?? {};
  const required = requiredSeccompProfile(ctx.isolation);
  if (psc.runAsNonRoot !== true) add("spec.securityContext.runAsNonRoot", "must be true");
  if (psc.runAsUser === 0) add("spec.securityContext.runAsUser", "must not be 0 (root)");
  if (psc.runAsGroup === 0) add("spec.securityContext.runAsGroup", "must not be 0 (root group)");
  if (psc.fsGroup === 0) add("spec.securityContext.fsGroup", "must not be 0 (root group)");
  (psc.supplementalGroups ?? []).forEach((g, i) => {
    if (g === 0) add(`spec.securityContext.supplementalGroups[${i}]`, "must not be 0 (root group)");
  });
  if (!sameJson(psc.seccompProfile, required)) {
    add("spec.securityContext.seccompProfile", `must be ${describeSeccomp(required)} for isolation ${ctx.isolation}, found ${describeSeccomp(psc.seccompProfile)}`);
  }
  checkSeLinux(psc.seLinuxOptions, "spec.securityContext.seLinuxOptions", add);
  checkAppArmor(psc.appArmorProfile?.type, "spec.securityContext.appArmorProfile.type", add);
  if (psc.windowsOptions?.hostProcess === true) add("spec.securityContext.windowsOptions.hostProcess", "must not be true", RULE_PSS);
  (psc.sysctls ?? []).forEach((s, i) => {
    if (!SAFE_SYSCTLS.has(s.name)) add(`spec.securityContext.sysctls[${i}].name`, `${s.name} is not a safe sysctl`, RULE_PSS);
  });
  for (const [key, value] of Object.entries(pod.metadata?.annotations ?? {})) {
    if (!key.startsWith("container.apparmor.security.beta.kubernetes.io/")) continue;
    if (value !== "runtime/default" && !value.startsWith("localhost/")) {
      add(`metadata.annotations[${key}]`, `AppArmor profile ${value} is not allowed`, RULE_PSS);
    }
  }

  const wantVolumes = new Map(desiredRouterVolumes().map(v => [v.name, v]));
  (spec.volumes ?? []).forEach((v, i) => {
    const reserved = wantVolumes.get(v.name);
    if (reserved && !sameJson(withoutVolumeDefaults(v), reserved)) add(`spec.volumes[${i}]`, `${v.name} is reserved for the router and must be exactly the volume kars injects`, RULE_RESERVED);
    if (v.name.startsWith("kars-writable-") && (Object.keys(v).length !== 2 || !v.emptyDir)) add(`spec.volumes[${i}]`, `${v.name} is reserved for the sandbox's writable paths and must be an emptyDir`, RULE_RESERVED);
    const sources = Object.keys(v).filter(k => k !== "name");
    for (const s of sources) {
      if (s === "hostPath") add(`spec.volumes[${i}].hostPath`, "hostPath volumes are not allowed");
      else if (!ALLOWED_VOLUME_SOURCES.has(s)) add(`spec.volumes[${i}].${s}`, `volume type ${s} is not allowed`);
    }
    (v.projected?.sources ?? []).forEach((src, j) => {
      if (src.serviceAccountToken) add(`spec.volumes[${i}].projected.sources[${j}].serviceAccountToken`, "ServiceAccount tokens are not allowed (the agent never holds a credential)");
    });
  });

  checkInjectedPresent(spec.initContainers ?? [], spec.containers, cfg, add);

  const lists: ContainerList[] = ["initContainers", "containers", "ephemeralContainers"];
  for (const list of lists) {
    ((spec[list] ?? []) as V1Container[]).forEach((c, i) => {
      checkContainer(c, `spec.${list}[${i}]`, psc, ctx, cfg, add);
    });
  }
  return out;
}

type Add = (path: string, message: string, rule?: string) => void;

/** A volume without the apiserver's defaults (`defaultMode: 420` on projected/configMap/secret sources). */
function withoutVolumeDefaults(v: object): unknown {
  return JSON.parse(JSON.stringify(v), (k, x) => (k === "defaultMode" && x === 420 ? undefined : x));
}

function checkInjectedPresent(init: V1Container[], containers: V1Container[], _cfg: AdmissionConfig, add: Add): void {
  if (init.length === 0 || init[0]?.name !== EGRESS_GUARD) {
    add("spec.initContainers[0]", `must be the ${EGRESS_GUARD} init container`, RULE_RESERVED);
  }
  if (!containers.some(c => c.name === INFERENCE_ROUTER)) {
    add("spec.containers", `must include the ${INFERENCE_ROUTER} sidecar`, RULE_RESERVED);
  }
}

function checkContainer(
  c: V1Container,
  path: string,
  psc: V1PodSecurityContext,
  ctx: SandboxContext,
  cfg: AdmissionConfig,
  add: Add,
): void {
  const isGuardName = c.name === EGRESS_GUARD;
  const isRouterName = c.name === INFERENCE_ROUTER;
  if (isGuardName && !isExactInjected(c, desiredEgressGuard(cfg))) {
    add(`${path}.name`, `${EGRESS_GUARD} is reserved for the injected egress guard and this container differs from it`, RULE_RESERVED);
  }
  if (isRouterName && !isExactInjected(c, desiredRouterSidecar(cfg))) {
    add(`${path}.name`, `${INFERENCE_ROUTER} is reserved for the injected router and this container differs from it`, RULE_RESERVED);
  }
  // Only the exact egress guard may run as root with NET_ADMIN/NET_RAW; only the exact router as 1001.
  const isGuard = isGuardName && isExactInjected(c, desiredEgressGuard(cfg));
  const isRouter = isRouterName && isExactInjected(c, desiredRouterSidecar(cfg));
  const sc: V1SecurityContext = c.securityContext ?? {};
  const scPath = `${path}.securityContext`;

  if (sc.privileged === true) add(`${scPath}.privileged`, "must be false");
  if (sc.allowPrivilegeEscalation !== false) add(`${scPath}.allowPrivilegeEscalation`, "must be false");
  if (sc.readOnlyRootFilesystem !== true) add(`${scPath}.readOnlyRootFilesystem`, "must be true");
  if (sc.procMount !== undefined && sc.procMount !== "Default") add(`${scPath}.procMount`, `must be Default, found ${sc.procMount}`);

  const addCaps = sc.capabilities?.add ?? [];
  if (!isGuard) {
    addCaps.forEach((cap, j) => add(`${scPath}.capabilities.add[${j}]`, `${cap} is not allowed`));
  }
  const drop = sc.capabilities?.drop;
  if (!Array.isArray(drop) || !drop.includes("ALL")) add(`${scPath}.capabilities.drop`, "must include ALL");

  if (!isGuard) {
    const nonRoot = sc.runAsNonRoot ?? psc.runAsNonRoot;
    if (sc.runAsNonRoot === false) add(`${scPath}.runAsNonRoot`, "must not be false");
    else if (nonRoot !== true) add(`${scPath}.runAsNonRoot`, "must be true (here or in spec.securityContext)");
    if (sc.runAsUser === 0) add(`${scPath}.runAsUser`, "must not be 0 (root)");
    else if (!isRouter) {
      // The egress guard's iptables rules restrict UID 1000: any other UID would bypass them.
      const uid = sc.runAsUser ?? psc.runAsUser;
      if (uid !== AGENT_UID) add(`${scPath}.runAsUser`, `must be ${AGENT_UID}, the agent UID the egress guard restricts, found ${uid ?? "unset (image default)"}`);
    }
    if (sc.runAsGroup === 0) add(`${scPath}.runAsGroup`, "must not be 0 (root group)");
    (c.volumeMounts ?? []).forEach((m, j) => {
      if (!isRouter && ROUTER_ONLY_VOLUMES.has(m.name)) add(`${path}.volumeMounts[${j}].name`, `${m.name} belongs to the router and may not be mounted by another container`, RULE_RESERVED);
      if (!isRouter && isSystemPath(m.mountPath)) add(`${path}.volumeMounts[${j}].mountPath`, `${m.mountPath} is a system path and may not be mounted over (read-only root filesystem)`);
    });
  }

  if (sc.seccompProfile !== undefined) {
    const required = requiredSeccompProfile(ctx.isolation);
    if (!sameJson(sc.seccompProfile, required)) {
      add(`${scPath}.seccompProfile`, `must be ${describeSeccomp(required)} for isolation ${ctx.isolation}, found ${describeSeccomp(sc.seccompProfile)}`);
    }
  }
  checkSeLinux(sc.seLinuxOptions, `${scPath}.seLinuxOptions`, add);
  checkAppArmor(sc.appArmorProfile?.type, `${scPath}.appArmorProfile.type`, add);
  if (sc.windowsOptions?.hostProcess === true) add(`${scPath}.windowsOptions.hostProcess`, "must not be true", RULE_PSS);

  (c.ports ?? []).forEach((p, j) => {
    if (p.hostPort !== undefined && p.hostPort !== 0) add(`${path}.ports[${j}].hostPort`, "host ports are not allowed");
  });
  for (const probe of ["livenessProbe", "readinessProbe", "startupProbe"] as const) {
    checkHandlerHost(c[probe], `${path}.${probe}`, add);
  }
  checkHandlerHost(c.lifecycle?.postStart, `${path}.lifecycle.postStart`, add);
  checkHandlerHost(c.lifecycle?.preStop, `${path}.lifecycle.preStop`, add);
}

function checkHandlerHost(h: Pick<V1Probe, "httpGet" | "tcpSocket"> | undefined, path: string, add: Add): void {
  if (h?.httpGet?.host) add(`${path}.httpGet.host`, "must be unset (probes and hooks may not target other hosts)", RULE_PSS);
  if (h?.tcpSocket?.host) add(`${path}.tcpSocket.host`, "must be unset (probes and hooks may not target other hosts)", RULE_PSS);
}

function checkSeLinux(o: { type?: string; user?: string; role?: string } | undefined, path: string, add: Add): void {
  if (!o) return;
  if (o.type !== undefined && !ALLOWED_SELINUX_TYPES.has(o.type)) add(`${path}.type`, `${o.type} is not an allowed SELinux type`, RULE_PSS);
  if (o.user) add(`${path}.user`, "must be unset", RULE_PSS);
  if (o.role) add(`${path}.role`, "must be unset", RULE_PSS);
}

function checkAppArmor(type: string | undefined, path: string, add: Add): void {
  if (type !== undefined && type !== "RuntimeDefault" && type !== "Localhost") add(path, `${type} is not allowed`, RULE_PSS);
}
