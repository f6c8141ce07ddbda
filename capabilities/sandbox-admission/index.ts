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
import { KarsImagePolicyKind, KarsSandboxKind } from "../shared/kinds";
import { shedManagedFields } from "../shared/watch-cache";
import { parseImageVerificationConfig } from "../image-verification/config";
import { imagePolicyFromResource, imagePolicyProblems } from "../image-verification/image-policy-from-resource";
import { verifyPodImages, withPinnedImages } from "../image-verification/pod-images";
import type { ImagePolicy } from "../image-verification/policy-match";
import { RegistryAuthFile } from "../image-verification/registry-auth";
import { RegistryClient } from "../image-verification/registry-client";
import { createVerificationCaches, type VerifyImageDeps } from "../image-verification/verify-image";

const config = parseAdmissionConfig(process.env);
const imageConfig = parseImageVerificationConfig(process.env);
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

/**
 * KarsImagePolicies by name, kept current by a watch and by a list every IMAGE_POLICY_RELIST_MS (which
 * also catches what a watch missed, and serves where Pepr runs admission without watches). The first
 * list is awaited before the first admission that needs it, so that a controller just started does not
 * admit unverified images while it catches up (a failed first list throws: the pod is refused, fail
 * closed); later lists refresh in the background.
 */
const IMAGE_POLICY_RELIST_MS = 30_000;
let imagePolicies = new Map<string, ImagePolicy>();
let imagePoliciesListed: Promise<void> | null = null;
let imagePoliciesListedAt = 0;
function listImagePolicies(): Promise<void> {
  return K8s(KarsImagePolicyKind)
    .Get()
    .then(list => {
      const next = new Map<string, ImagePolicy>();
      for (const o of list.items) if (o.metadata?.name) next.set(o.metadata.name, imagePolicyFromResource(o));
      imagePolicies = next;
      imagePoliciesListedAt = Date.now();
    });
}
async function currentImagePolicies(): Promise<ImagePolicy[]> {
  imagePoliciesListed ??= listImagePolicies().catch(err => {
    imagePoliciesListed = null;
    throw new Error(`cannot list KarsImagePolicies: ${err instanceof Error ? err.message : String(err)}`);
  });
  await imagePoliciesListed;
  if (Date.now() - imagePoliciesListedAt > IMAGE_POLICY_RELIST_MS) {
    imagePoliciesListedAt = Date.now(); // one refresh at a time
    listImagePolicies().catch(err => log.warn({ err }, "KarsImagePolicy refresh failed; the watched set stays in use"));
  }
  return [...imagePolicies.values()];
}
const registryAuth = imageConfig.registryAuthFile ? new RegistryAuthFile(imageConfig.registryAuthFile, message => log.error({}, message)) : undefined;
const imageDeps: VerifyImageDeps = {
  client: new RegistryClient({ plainHttp: imageConfig.plainHttpRegistries, ...(registryAuth ? { credentials: () => registryAuth.current() } : {}) }),
  now: Date.now,
  deadlineMs: imageConfig.deadlineMs,
  caches: createVerificationCaches(),
};

// Why: which images must be signed, without a LIST per pod.
When(KarsImagePolicyKind)
  .IsCreatedOrUpdated()
  .Watch(p => {
    if (p.metadata?.name) imagePolicies.set(p.metadata.name, imagePolicyFromResource(p));
  });
// Why: a deleted policy no longer binds images.
When(KarsImagePolicyKind)
  .IsDeleted()
  .Watch(p => {
    if (p.metadata?.name) imagePolicies.delete(p.metadata.name);
  });

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
    // cosign-on-admission: pin each image a KarsImagePolicy verified to that digest; a refusal is Validate's to report
    const images = await verifyPodImages({ ...req.Raw, spec: hardened.spec }, await currentImagePolicies(), imageDeps);
    req.Raw.spec = withPinnedImages({ spec: hardened.spec }, images.pins).spec;
  });

// Why: deny anything weaker than the sandbox posture, naming every field (fail closed on errors).
When(a.Pod)
  .IsCreatedOrUpdated()
  .Validate(async req => {
    const name = `${req.Request.namespace}/${req.Raw.metadata?.name ?? req.Raw.metadata?.generateName ?? ""}`;
    try {
      const ns = await namespaceOf(req.Request.namespace ?? "");
      if (!isSandboxNamespace(ns)) return req.Approve();
      const images = await verifyPodImages(req.Raw, await currentImagePolicies(), imageDeps, req.Request.operation === "UPDATE" ? req.OldResource : undefined, { requirePinned: true });
      const violations = [...postureViolations(req.Raw, sandboxContextFromNamespace(ns!), config), ...images.violations];
      if (violations.length === 0) {
        // warn-mode findings reach a kubectl user as warnings; pods a controller creates have no one to read them: logged
        for (const w of images.warnings) log.warn({ pod: name, imagePolicyWarning: w }, "sandbox pod admitted with an image policy warning");
        log.info({ pod: name, decision: "admit" }, "sandbox pod admitted");
        return images.warnings.length ? req.Approve(images.warnings) : req.Approve();
      }
      log.info({ pod: name, decision: "deny", violations: violations.length }, "sandbox pod denied");
      return req.Deny(formatViolations(violations), 422);
    } catch (e) {
      log.error({ pod: name, err: e }, "admission check failed");
      return req.Deny(`kars could not check this pod and refuses it (fail closed): ${e instanceof Error ? e.message : String(e)}`, 500);
    }
  });

// Why: a policy whose key does not parse or whose globs never match is refused at apply, not when pods are.
When(KarsImagePolicyKind)
  .IsCreatedOrUpdated()
  .Validate(req => {
    const { violations, warnings } = imagePolicyProblems(req.Raw.spec);
    if (violations.length > 0) return req.Deny(formatViolations(violations), 422);
    return warnings.length ? req.Approve(warnings) : req.Approve();
  });

// Why: manifests written for the original kars apply unchanged; say which fields kars ignores.
When(KarsSandboxKind)
  .IsCreatedOrUpdated()
  .Validate(req => {
    const warnings = ignoredFieldWarnings(req.Raw.spec);
    return warnings.length ? req.Approve(warnings) : req.Approve();
  });
