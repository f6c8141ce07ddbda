import { ImageVerificationError } from "./errors";
import { MANIFEST_MEDIA_TYPES, MAX_SIGNATURE_BLOB_BYTES, type OciDescriptor, type RegistryClient } from "./registry-client";

/** Artifact type of a Sigstore bundle attached as an OCI referrer (cosign v3's default; PITFALLS "Sigstore / cosign"). */
export const SIGSTORE_BUNDLE_ARTIFACT_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json";
/** Media type of a legacy cosign signature layer (the simple-signing payload). */
export const SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json";
/** Layer annotations of a legacy cosign signature (cosign's pkg/oci/static). */
export const COSIGN_ANNOTATIONS = {
  signature: "dev.cosignproject.cosign/signature",
  certificate: "dev.sigstore.cosign/certificate",
  chain: "dev.sigstore.cosign/chain",
  bundle: "dev.sigstore.cosign/bundle",
} as const;

/**
 * Bounds on the signature work for one image, whatever a registry holds (anyone who can push to a
 * covered repository can attach referrers): at most this many referrers and legacy signature layers
 * are read, each source on its own (a flood of one cannot hide the other), one bundle layer per
 * referrer (cosign writes one), no blob larger than MAX_SIGNATURE_BLOB_BYTES by its descriptor, no
 * blob twice, and referrer manifests of at most SIGNATURE_MANIFEST_BYTES.
 */
export const MAX_SIGNATURES = 16;
/** Largest signature or referrer manifest read (bytes): cosign's are under 2 KiB. */
export const SIGNATURE_MANIFEST_BYTES = 256 * 1024;

/** A signature found for an image digest, in the form it was stored. */
export type FoundSignature =
  | {
      kind: "sigstore-bundle";
      /** Digest of the referrer manifest that carried it (for messages). */
      source: string;
      /** The bundle JSON (Sigstore bundle v0.3), parsed, not yet validated. */
      bundle: unknown;
    }
  | {
      kind: "simple-signing";
      /** Digest of the payload layer (for messages). */
      source: string;
      /** The signed payload bytes (cosign's simple-signing JSON). */
      payload: Buffer;
      /** The raw signature bytes (base64-decoded annotation). */
      signature: Buffer;
      /** PEM of the signing certificate, for keyless signatures. */
      certificate?: string;
      /** PEM of the certificate chain, for keyless signatures. */
      chain?: string;
    };

/**
 * The signatures stored for `digest` in `registry/repository`, both ways cosign stores them, within
 * the bounds above: Sigstore bundles attached as OCI referrers (referrers API, or its tag schema),
 * and legacy `sha256-<hex>.sig` tags whose layers carry the simple-signing payload with the signature
 * in an annotation. Registry errors other than "not found" throw (fail closed: an unreachable
 * registry is not "unsigned"). What kars cannot read (another form, unparseable JSON, too large) is
 * skipped and not counted; the caller reports `no_signature` when nothing usable is left.
 */
export async function discoverSignatures(client: RegistryClient, registry: string, repository: string, digest: string, signal: AbortSignal): Promise<FoundSignature[]> {
  const found: FoundSignature[] = [];
  const seen = new Set<string>();
  const small = (d: OciDescriptor | undefined): d is OciDescriptor =>
    !!d && typeof d.digest === "string" && typeof d.size === "number" && d.size >= 0 && d.size <= MAX_SIGNATURE_BLOB_BYTES && !seen.has(d.digest);
  const referrers = await client.referrers(registry, repository, digest, SIGSTORE_BUNDLE_ARTIFACT_TYPE, signal);
  for (const ref of referrers.slice(0, MAX_SIGNATURES)) {
    const manifest = await client.manifest(registry, repository, ref.digest, signal, MANIFEST_MEDIA_TYPES, SIGNATURE_MANIFEST_BYTES);
    const layer = (manifest.json.layers ?? []).find(l => l?.mediaType === SIGSTORE_BUNDLE_ARTIFACT_TYPE);
    if (!small(layer)) continue;
    seen.add(layer.digest);
    const bundle = parseJson(await client.blob(registry, repository, layer.digest, signal));
    if (bundle !== undefined) found.push({ kind: "sigstore-bundle", source: ref.digest, bundle });
  }
  let legacy;
  try {
    legacy = await client.manifest(registry, repository, `${digest.replace(":", "-")}.sig`, signal, MANIFEST_MEDIA_TYPES, SIGNATURE_MANIFEST_BYTES);
  } catch (err) {
    if (!(err instanceof ImageVerificationError && err.code === "image_not_found")) throw err;
  }
  let legacyRead = 0;
  for (const layer of legacy?.json.layers ?? []) {
    if (legacyRead >= MAX_SIGNATURES) break;
    const sig = layer?.annotations?.[COSIGN_ANNOTATIONS.signature];
    if (layer?.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE || typeof sig !== "string" || !small(layer)) continue;
    seen.add(layer.digest);
    legacyRead++;
    const payload = await client.blob(registry, repository, layer.digest, signal);
    const certificate = layer.annotations?.[COSIGN_ANNOTATIONS.certificate];
    const chain = layer.annotations?.[COSIGN_ANNOTATIONS.chain];
    found.push({
      kind: "simple-signing",
      source: layer.digest,
      payload,
      signature: Buffer.from(sig, "base64"),
      ...(certificate ? { certificate } : {}),
      ...(chain ? { chain } : {}),
    });
  }
  return found;
}

/** The parsed JSON, or undefined when it is not JSON (skipped: one unreadable referrer must not hide a good one). */
function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch {
    return undefined;
  }
}
