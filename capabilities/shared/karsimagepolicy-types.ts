/**
 * Plain types of the KarsImagePolicy custom resource (cluster-scoped, DESIGN §3), matching
 * karsimagepolicy-crd.ts. No runtime imports: pure modules use these.
 */

/** One signing authority: a public key (PEM, SPKI). Keyless authorities are not served yet. */
export interface KarsImagePolicyAuthority {
  /** Name for messages (default `key-<index>`). */
  name?: string;
  key: { pem: string };
}

/** spec of a KarsImagePolicy. */
export interface KarsImagePolicySpec {
  /** Globs over `registry/repository` (`*`, `?` within a path component, `**` across). */
  images: string[];
  /** A matching image needs a signature one of these verifies. */
  authorities: KarsImagePolicyAuthority[];
  /** `enforce` (default) refuses the pod; `warn` admits it and warns. */
  mode?: "enforce" | "warn";
}
