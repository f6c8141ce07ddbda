/**
 * Keeping the controller's watch caches small.
 */

/**
 * Drops `metadata.managedFields` from an object a Pepr watch delivered, in place, and returns it.
 * kubernetes-fluent-client's watcher keeps every watched object in its cache by reference (it reads
 * only `uid` and `resourceVersion` from it, to relist), and no kars watch callback reads
 * managedFields, which are much of a server-side-applied object's size: with 1,000 sandboxes the
 * controller watches ~6,000 such objects (KarsSandboxes and their children) and bench:reconcile's
 * controller ran into its heap limit. Never throws.
 */
export function shedManagedFields<T>(o: T): T {
  const meta = (o as { metadata?: { managedFields?: unknown } } | null | undefined)?.metadata;
  if (meta && typeof meta === "object" && "managedFields" in meta) delete meta.managedFields;
  return o;
}
