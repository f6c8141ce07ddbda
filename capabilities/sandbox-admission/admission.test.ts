import type { V1Pod } from "@kubernetes/client-node";
import { DEFAULT_ADMISSION_CONFIG as cfg, parseAdmissionConfig, type SandboxContext } from "./config";
import { hardenSandboxPod } from "./harden-pod";
import { postureViolations } from "./posture-violations";
import { desiredEgressGuard, desiredRouterSidecar, isExactInjected } from "./injected-containers";
import { formatViolations } from "../shared/violation";

const ctx: SandboxContext = { sandbox: "demo", isolation: "enhanced", writablePaths: ["/sandbox", "/tmp"] };
const pod = (spec: Partial<NonNullable<V1Pod["spec"]>> = {}): V1Pod => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "p", namespace: "kars-demo" },
  spec: { containers: [{ name: "agent", image: "example.com/agent@sha256:" + "a".repeat(64) }], ...spec },
});
const admit = (p: V1Pod, c: SandboxContext = ctx) => postureViolations(hardenSandboxPod(p, c, cfg), c, cfg);
const paths = (p: V1Pod, c: SandboxContext = ctx) => admit(p, c).map(v => v.path);

describe("hardenSandboxPod", () => {
  it("injects egress-guard first and the router sidecar, then the pod passes validation", () => {
    const out = hardenSandboxPod(pod({ initContainers: [{ name: "setup", image: "x" }] }), ctx, cfg);
    expect(out.spec!.initContainers!.map(c => c.name)).toEqual(["egress-guard", "setup"]);
    expect(out.spec!.containers.map(c => c.name)).toEqual(["agent", "inference-router"]);
    expect(postureViolations(out, ctx, cfg)).toEqual([]);
  });

  it("is idempotent: hardening twice equals hardening once", () => {
    const once = hardenSandboxPod(pod(), ctx, cfg);
    expect(hardenSandboxPod(once, ctx, cfg)).toEqual(once);
  });

  it("does not modify its input", () => {
    const p = pod();
    const before = JSON.stringify(p);
    hardenSandboxPod(p, ctx, cfg);
    expect(JSON.stringify(p)).toBe(before);
  });

  it.each([
    ["enhanced", { type: "Localhost", localhostProfile: "profiles/kars-strict.json" }, undefined],
    ["standard", { type: "RuntimeDefault" }, undefined],
    ["confidential", { type: "RuntimeDefault" }, "kata-cc"],
  ] as const)("isolation %s sets seccomp %j and runtimeClassName %s", (isolation, seccomp, rc) => {
    const out = hardenSandboxPod(pod(), { ...ctx, isolation }, cfg);
    expect(out.spec!.securityContext!.seccompProfile).toEqual(seccomp);
    expect(out.spec!.runtimeClassName).toBe(rc);
  });

  it("sets the agent's unset fields to the hardened values and mounts writable paths", () => {
    const agent = hardenSandboxPod(pod(), ctx, cfg).spec!.containers[0]!;
    expect(agent.securityContext).toEqual({
      privileged: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
      runAsNonRoot: true, runAsUser: 1000, capabilities: { drop: ["ALL"] },
    });
    expect(agent.volumeMounts!.map(m => m.mountPath)).toEqual(["/sandbox", "/tmp"]);
    expect(agent.env).toContainEqual({ name: "OPENAI_BASE_URL", value: "http://127.0.0.1:8443/v1" });
  });

  it.each([
    ["privileged: true", { privileged: true }, "spec.containers[0].securityContext.privileged"],
    ["allowPrivilegeEscalation: true", { allowPrivilegeEscalation: true }, "spec.containers[0].securityContext.allowPrivilegeEscalation"],
    ["readOnlyRootFilesystem: false", { readOnlyRootFilesystem: false }, "spec.containers[0].securityContext.readOnlyRootFilesystem"],
    ["runAsUser: 0", { runAsUser: 0 }, "spec.containers[0].securityContext.runAsUser"],
    ["runAsNonRoot: false", { runAsNonRoot: false }, "spec.containers[0].securityContext.runAsNonRoot"],
    ["drop without ALL", { capabilities: { drop: ["NET_RAW"] } }, "spec.containers[0].securityContext.capabilities.drop"],
  ])("keeps a user-set insecure %s for Validate to deny", (_t, sc, path) => {
    const out = hardenSandboxPod(pod({ containers: [{ name: "agent", image: "x", securityContext: sc }] }), ctx, cfg);
    expect(out.spec!.containers[0]!.securityContext).toMatchObject(sc);
    expect(postureViolations(out, ctx, cfg).map(v => v.path)).toContain(path);
  });

  it.each([
    ["privileged", { privileged: true }],
    ["CAP_SYS_ADMIN", { capabilities: { add: ["SYS_ADMIN"] } }],
  ])("leaves allowPrivilegeEscalation unset beside %s (the apiserver refuses that pair) and Validate denies", (_t, sc) => {
    const out = hardenSandboxPod(pod({ containers: [{ name: "agent", image: "x", securityContext: sc }] }), ctx, cfg);
    expect(out.spec!.containers[0]!.securityContext!.allowPrivilegeEscalation).toBeUndefined();
    expect(postureViolations(out, ctx, cfg).map(v => v.path)).toContain("spec.containers[0].securityContext.allowPrivilegeEscalation");
  });

  it("recognises its router volumes as the apiserver stores them (defaultMode 420 added)", () => {
    const out = hardenSandboxPod(pod(), ctx, cfg);
    const stored = JSON.parse(JSON.stringify(out).replace('"projected":{', '"projected":{"defaultMode":420,'));
    expect(stored.spec.volumes[0].projected.defaultMode).toBe(420);
    expect(postureViolations(stored, ctx, cfg)).toEqual([]);
  });

  it("keeps a user-set runAsUser (4242) untouched, and Validate denies it: only UID 1000 is guarded", () => {
    const out = hardenSandboxPod(pod({ containers: [{ name: "agent", image: "x", securityContext: { runAsUser: 4242 } }] }), ctx, cfg);
    expect(out.spec!.containers[0]!.securityContext!.runAsUser).toBe(4242);
    expect(postureViolations(out, ctx, cfg).map(v => v.message)).toContain("must be 1000, the agent UID the egress guard restricts, found 4242");
  });

  it("removes the token volume the ServiceAccount admission plugin added on its own", () => {
    const tokenVolume = { name: "kube-api-access-x7k2p", projected: { sources: [{ serviceAccountToken: { path: "token", expirationSeconds: 3607 } }, { configMap: { name: "kube-root-ca.crt" } }] } };
    const mount = { name: "kube-api-access-x7k2p", mountPath: "/var/run/secrets/kubernetes.io/serviceaccount", readOnly: true };
    const out = hardenSandboxPod(pod({ volumes: [tokenVolume], containers: [{ name: "agent", image: "x", volumeMounts: [mount] }] }), ctx, cfg);
    expect(out.spec!.volumes!.map(v => v.name)).not.toContain("kube-api-access-x7k2p");
    expect(out.spec!.containers[0]!.volumeMounts!.map(m => m.name)).not.toContain("kube-api-access-x7k2p");
    expect(out.spec!.automountServiceAccountToken).toBe(false);
    expect(postureViolations(out, ctx, cfg)).toEqual([]);
  });
});

describe("postureViolations", () => {
  const c = (sc: object, extra: object = {}) => ({ containers: [{ name: "agent", image: "x", securityContext: sc, ...extra }] });
  it.each([
    ["privileged container", c({ privileged: true }), "spec.containers[0].securityContext.privileged: must be false (kars sandbox posture)"],
    ["hostNetwork", { hostNetwork: true }, "spec.hostNetwork: must be false (kars sandbox posture)"],
    ["hostPID", { hostPID: true }, "spec.hostPID: must be false (kars sandbox posture)"],
    ["hostIPC", { hostIPC: true }, "spec.hostIPC: must be false (kars sandbox posture)"],
    ["hostPath volume", { volumes: [{ name: "h", hostPath: { path: "/" } }] }, "spec.volumes[0].hostPath: hostPath volumes are not allowed (kars sandbox posture)"],
    ["non-restricted volume type", { volumes: [{ name: "n", nfs: { server: "s", path: "/" } }] }, "spec.volumes[0].nfs: volume type nfs is not allowed (kars sandbox posture)"],
    ["added capability", c({ capabilities: { add: ["SYS_ADMIN"], drop: ["ALL"] } }), "spec.containers[0].securityContext.capabilities.add[0]: SYS_ADMIN is not allowed (kars sandbox posture)"],
    ["missing drop ALL", c({ capabilities: { drop: ["NET_RAW"] } }), "spec.containers[0].securityContext.capabilities.drop: must include ALL (kars sandbox posture)"],
    ["root user", c({ runAsUser: 0 }), "spec.containers[0].securityContext.runAsUser: must not be 0 (root) (kars sandbox posture)"],
    ["pod root user", { securityContext: { runAsUser: 0 } }, "spec.securityContext.runAsUser: must not be 0 (root) (kars sandbox posture)"],
    ["writable rootfs", c({ readOnlyRootFilesystem: false }), "spec.containers[0].securityContext.readOnlyRootFilesystem: must be true (kars sandbox posture)"],
    ["host port", c({}, { ports: [{ containerPort: 80, hostPort: 80 }] }), "spec.containers[0].ports[0].hostPort: host ports are not allowed (kars sandbox posture)"],
    ["procMount Unmasked in a user-namespaced pod", { hostUsers: false, ...c({ procMount: "Unmasked" }) }, "spec.containers[0].securityContext.procMount: must be Default, found Unmasked (kars sandbox posture)"],
    ["seccomp Unconfined", { securityContext: { seccompProfile: { type: "Unconfined" } } }, "spec.securityContext.seccompProfile: must be Localhost profiles/kars-strict.json for isolation enhanced, found Unconfined (kars sandbox posture)"],
    ["weaker container seccomp", c({ seccompProfile: { type: "RuntimeDefault" } }), "spec.containers[0].securityContext.seccompProfile: must be Localhost profiles/kars-strict.json for isolation enhanced, found RuntimeDefault (kars sandbox posture)"],
    ["unsafe sysctl", { securityContext: { sysctls: [{ name: "kernel.msgmax", value: "1" }] } }, "spec.securityContext.sysctls[0].name: kernel.msgmax is not a safe sysctl (pod security standards)"],
    ["probe to another host", c({}, { livenessProbe: { httpGet: { host: "evil", port: 80 } } }), "spec.containers[0].livenessProbe.httpGet.host: must be unset (probes and hooks may not target other hosts) (pod security standards)"],
    ["reserved name with another spec", { containers: [{ name: "inference-router", image: "evil" }] }, "spec.containers[0].name: inference-router is reserved for the injected router and this container differs from it (kars reserved container)"],
    ["fake egress-guard with SYS_ADMIN", { initContainers: [{ ...desiredEgressGuard(cfg), securityContext: { capabilities: { add: ["SYS_ADMIN"], drop: ["ALL"] } } }] }, "spec.initContainers[0].securityContext.capabilities.add[0]: SYS_ADMIN is not allowed (kars sandbox posture)"],
    ["ephemeral containers", { ephemeralContainers: [{ name: "dbg", image: "busybox" }] }, "spec.ephemeralContainers: ephemeral containers are not allowed in a sandbox (kars sandbox posture)"],
    ["a ServiceAccount token", { automountServiceAccountToken: true }, "spec.automountServiceAccountToken: must not be true (the agent never holds a credential) (kars sandbox posture)"],
    ["a projected ServiceAccount token", { volumes: [{ name: "t", projected: { sources: [{ serviceAccountToken: { path: "token" } }] } }] }, "spec.volumes[0].projected.sources[0].serviceAccountToken: ServiceAccount tokens are not allowed (the agent never holds a credential) (kars sandbox posture)"],
    ["a shared process namespace", { shareProcessNamespace: true }, "spec.shareProcessNamespace: must not be true (the agent must not see the router's processes) (kars sandbox posture)"],
    ["root group", c({ runAsGroup: 0 }), "spec.containers[0].securityContext.runAsGroup: must not be 0 (root group) (kars sandbox posture)"],
    ["pod root group", { securityContext: { runAsGroup: 0 } }, "spec.securityContext.runAsGroup: must not be 0 (root group) (kars sandbox posture)"],
    ["fsGroup 0", { securityContext: { fsGroup: 0 } }, "spec.securityContext.fsGroup: must not be 0 (root group) (kars sandbox posture)"],
    ["supplemental group 0", { securityContext: { supplementalGroups: [5, 0] } }, "spec.securityContext.supplementalGroups[1]: must not be 0 (root group) (kars sandbox posture)"],
    ["the router's UID for the agent", c({ runAsUser: 1001 }), "spec.containers[0].securityContext.runAsUser: must be 1000, the agent UID the egress guard restricts, found 1001 (kars sandbox posture)"],
    ["another pod-level UID", { securityContext: { runAsUser: 4242 } }, "spec.containers[0].securityContext.runAsUser: must be 1000, the agent UID the egress guard restricts, found 4242 (kars sandbox posture)"],
    ["a guard with another env", { initContainers: [{ ...desiredEgressGuard(cfg), env: [{ name: "KARS_AGENT_UID", value: "65534" }] }] }, "spec.initContainers[0].name: egress-guard is reserved for the injected egress guard and this container differs from it (kars reserved container)"],
    ["a guard turned into a sidecar with a flushing probe", { initContainers: [{ ...desiredEgressGuard(cfg), restartPolicy: "Always", livenessProbe: { exec: { command: ["iptables", "-F"] } } }] }, "spec.initContainers[0].name: egress-guard is reserved for the injected egress guard and this container differs from it (kars reserved container)"],
    ["a router with NODE_OPTIONS", { containers: [{ name: "agent", image: "x" }, { ...desiredRouterSidecar(cfg), env: [{ name: "NODE_OPTIONS", value: "--require /x.js" }] }] }, "spec.containers[1].name: inference-router is reserved for the injected router and this container differs from it (kars reserved container)"],
    ["a user volume named like the router's config", { volumes: [{ name: "kars-config", configMap: { name: "attacker" } }] }, "spec.volumes[0]: kars-config is reserved for the router and must be exactly the volume kars injects (kars reserved container)"],
    ["the agent mounting the router's state", c({}, { volumeMounts: [{ name: "kars-router-state", mountPath: "/state" }] }), "spec.containers[0].volumeMounts[0].name: kars-router-state belongs to the router and may not be mounted by another container (kars reserved container)"],
    ["an emptyDir over /etc", { volumes: [{ name: "e", emptyDir: {} }], ...c({}, { volumeMounts: [{ name: "e", mountPath: "//etc/" }] }) }, "spec.containers[0].volumeMounts[0].mountPath: //etc/ is a system path and may not be mounted over (read-only root filesystem) (kars sandbox posture)"],
    ["hostAliases", { hostAliases: [{ ip: "1.2.3.4", hostnames: ["api.openai.com"] }] }, "spec.hostAliases: must be empty (would redirect the router's upstream and egress names) (kars sandbox posture)"],
    ["dnsPolicy None", { dnsPolicy: "None", dnsConfig: { nameservers: ["8.8.8.8"] } }, "spec.dnsConfig.nameservers: must be empty (the egress guard allows cluster DNS only) (kars sandbox posture)"],
    ["a system priority class", { priorityClassName: "system-node-critical" }, "spec.priorityClassName: system-node-critical is reserved for cluster components (kars sandbox posture)"],
    ["a user-chosen runtime class", { runtimeClassName: "runc-plain" }, "spec.runtimeClassName: must be unset for isolation enhanced (the runtime follows the sandbox's isolation) (kars sandbox posture)"],
    ["SELinux user", { securityContext: { seLinuxOptions: { user: "system_u" } } }, "spec.securityContext.seLinuxOptions.user: must be unset (pod security standards)"],
  ])("denies %s with its field path and rule", (_t, spec, message) => {
    expect(admit(pod(spec as object)).map(v => `${v.path}: ${v.message} (${v.rule})`)).toContain(message);
  });

  it("names every violation, not only the first", () => {
    const vs = admit(pod({ hostNetwork: true, ...c({ privileged: true, runAsUser: 0 }) }));
    expect(vs.map(v => v.path)).toEqual(expect.arrayContaining([
      "spec.hostNetwork", "spec.containers[0].securityContext.privileged", "spec.containers[0].securityContext.runAsUser",
    ]));
    expect(formatViolations(vs).split("; ").length).toBe(vs.length);
  });

  it("denies a pod that skipped mutation (no egress-guard, no router)", () => {
    expect(postureViolations(pod(), ctx, cfg).map(v => v.path)).toEqual(expect.arrayContaining(["spec.initContainers[0]", "spec.containers"]));
  });

  it("fails closed on a pod without a containers list", () => {
    expect(postureViolations({ spec: {} } as V1Pod, ctx, cfg)).toEqual([
      { path: "spec.containers", message: "must be a list of containers", rule: "kars sandbox posture" },
    ]);
  });

  it("requires the configured runtime class under isolation confidential", () => {
    const conf = { ...ctx, isolation: "confidential" as const };
    expect(paths(pod({ runtimeClassName: "runc" }), conf)).toEqual(["spec.runtimeClassName"]);
    expect(paths(pod(), conf)).toEqual([]);
  });

  it("admits a standard-isolation pod with RuntimeDefault", () => {
    expect(paths(pod({ securityContext: { seccompProfile: { type: "RuntimeDefault" } } }), { ...ctx, isolation: "standard" })).toEqual([]);
  });
});

describe("isExactInjected", () => {
  it.each([
    ["the injected guard", desiredEgressGuard(cfg), true],
    ["the guard with apiserver defaults added", { ...desiredEgressGuard(cfg), imagePullPolicy: "IfNotPresent", terminationMessagePath: "/dev/termination-log" }, true],
    ["the guard with another image", { ...desiredEgressGuard(cfg), image: "evil" }, false],
    ["the guard with another command", { ...desiredEgressGuard(cfg), command: ["sh"] }, false],
    ["the router as guard", { ...desiredRouterSidecar(cfg), name: "egress-guard" }, false],
  ])("%s → %s", (_t, c, want) => {
    expect(isExactInjected(c, desiredEgressGuard(cfg))).toBe(want);
  });
});

describe("parseAdmissionConfig", () => {
  it("reads overrides", () => {
    expect(parseAdmissionConfig({ KARS_ROUTER_IMAGE: "r:1", KARS_CLUSTER_DNS: "10.0.0.10, fd00::a" })).toMatchObject({ routerImage: "r:1", clusterDns: ["10.0.0.10", "fd00::a"] });
  });
  it("refuses an empty value by name", () => {
    expect(() => parseAdmissionConfig({ KARS_EGRESS_GUARD_IMAGE: " " })).toThrow("KARS_EGRESS_GUARD_IMAGE: must not be empty");
  });
});
