/**
 * Pepr capability: admission of every pod in a sandbox namespace (DESIGN §4). The webhook
 * configurations scope it to namespaces labelled `kars.azure.com/role=sandbox` with
 * failurePolicy Fail; here each binding reads the request, calls the pure function, and answers.
 */
import { Capability, a, K8s, kind, Log } from "pepr";
import { formatViolations } from "../shared/violation";
import { parseAdmissionConfig } from "./config";
import { hardenSandboxPod } from "./harden-pod";
import { postureViolations } from "./posture-violations";
import { isSandboxNamespace, sandboxContextFromNamespace } from "./sandbox-context";
import { ignoredFieldWarnings } from "./ignored-fields";
import { KarsSandboxKind } from "../shared/kinds";
import { shedManagedFields } from "../shared/watch-cache";

const config = parseAdmissionConfig(process.env);
const log = Log.child({ component: "admission.posture" }, { level: process.env.KARS_LOG_LEVEL ?? "info" });

/** The admission capability (pods in sandbox namespaces; KarsSandbox warnings). */
export const SandboxAdmission = new Capability({
  name: "sandbox-admission",
  description: "Injects the egress guard and router into sandbox pods, hardens them and denies weaker posture.",
  namespaces: [],
});

const { When } = SandboxAdmission;

/**
 * Namespace lookups for the admission hot path: kept current by a watch on sandbox namespaces, and
 * otherwise served from cache while a background GET refreshes entries older than 5 s
 * (stale-while-revalidate), so a GET sits on the request path only for a namespace never seen before.
 */
const namespaceCache = new Map<string, { at: number; ns: kind.Namespace | undefined; refreshing?: boolean }>();
async function namespaceOf(name: string): Promise<kind.Namespace | undefined> {
  const hit = namespaceCache.get(name);
  if (!hit) {
    const ns = shedManagedFields(await K8s(kind.Namespace).Get(name));
    namespaceCache.set(name, { at: Date.now(), ns });
    return ns;
  }
  if (Date.now() - hit.at > 5000 && !hit.refreshing) {
    hit.refreshing = true;
    K8s(kind.Namespace)
      .Get(name)
      .then(
        ns => namespaceCache.set(name, { at: Date.now(), ns: shedManagedFields(ns) }),
        () => (hit.refreshing = false),
      );
  }
  return hit.ns;
}

// Why: keep the admission context of sandbox namespaces current without a GET per pod.
When(a.Namespace)
  .IsCreatedOrUpdated()
  .Watch(ns => {
    if (ns.metadata?.name) namespaceCache.set(ns.metadata.name, { at: Date.now(), ns: shedManagedFields(ns) });
  });

// Why: a sandbox pod must carry the guards and hardened defaults before it is stored.
When(a.Pod)
  .IsCreated()
  .Mutate(async req => {
    const ns = await namespaceOf(req.Request.namespace ?? "");
    if (!isSandboxNamespace(ns)) return;
    const hardened = hardenSandboxPod(req.Raw, sandboxContextFromNamespace(ns!), config);
    req.Raw.spec = hardened.spec;
  });

// Why: deny anything weaker than the sandbox posture, naming every field (fail closed on errors).
When(a.Pod)
  .IsCreatedOrUpdated()
  .Validate(async req => {
    const name = `${req.Request.namespace}/${req.Raw.metadata?.name ?? req.Raw.metadata?.generateName ?? ""}`;
    try {
      const ns = await namespaceOf(req.Request.namespace ?? "");
      if (!isSandboxNamespace(ns)) return req.Approve();
      const violations = postureViolations(req.Raw, sandboxContextFromNamespace(ns!), config);
      if (violations.length === 0) {
        log.info({ pod: name, decision: "admit" }, "sandbox pod admitted");
        return req.Approve();
      }
      log.info({ pod: name, decision: "deny", violations: violations.length }, "sandbox pod denied");
      return req.Deny(formatViolations(violations), 422);
    } catch (e) {
      log.error({ pod: name, err: e }, "admission check failed");
      return req.Deny(`kars could not check this pod and refuses it (fail closed): ${e instanceof Error ? e.message : String(e)}`, 500);
    }
  });

// Why: manifests written for the original kars apply unchanged; say which fields kars ignores.
When(KarsSandboxKind)
  .IsCreatedOrUpdated()
  .Validate(req => {
    const warnings = ignoredFieldWarnings(req.Raw.spec);
    return warnings.length ? req.Approve(warnings) : req.Approve();
  });
