import { ImageVerificationError } from "./errors";
import type { RegistryClient } from "./registry-client";

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

/** Most signatures of one image read and tried (a registry could attach thousands: bounded work). */
export const MAX_SIGNATURES = 16;

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
 * Every signature stored for `digest` in `registry/repository`, both ways cosign stores them (at most
 * MAX_SIGNATURES): Sigstore bundles attached as OCI referrers (referrers API, or its tag schema), and
 * legacy `sha256-<hex>.sig` tags whose layers carry the simple-signing payload with the signature in an
 * annotation. Registry errors other than "not found" throw (fail closed: an unreachable registry is
 * not "unsigned"). Layers of a form kars does not read are skipped; the caller reports `no_signature`
 * when nothing usable is left.
 */
export async function discoverSignatures(client: RegistryClient, registry: string, repository: string, digest: string, signal: AbortSignal): Promise<FoundSignature[]> {
  const found: FoundSignature[] = [];
  const referrers = await client.referrers(registry, repository, digest, SIGSTORE_BUNDLE_ARTIFACT_TYPE, signal);
  for (const ref of referrers.slice(0, MAX_SIGNATURES)) {
    const manifest = await client.manifest(registry, repository, ref.digest, signal);
    for (const layer of manifest.json.layers ?? []) {
      if (layer?.mediaType !== SIGSTORE_BUNDLE_ARTIFACT_TYPE || typeof layer.digest !== "string") continue;
      const bundle = parseJson(await client.blob(registry, repository, layer.digest, signal));
      if (bundle !== undefined) found.push({ kind: "sigstore-bundle", source: ref.digest, bundle });
    }
  }
  let legacy;
  try {
    legacy = await client.manifest(registry, repository, `${digest.replace(":", "-")}.sig`, signal);
  } catch (err) {
    if (!(err instanceof ImageVerificationError && err.code === "image_not_found")) throw err;
  }
  for (const layer of legacy?.json.layers ?? []) {
    if (found.length >= MAX_SIGNATURES) break;
    const sig = layer?.annotations?.[COSIGN_ANNOTATIONS.signature];
    if (layer?.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE || typeof sig !== "string" || typeof layer.digest !== "string") continue;
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
  return found.slice(0, MAX_SIGNATURES);
}

/** The parsed JSON, or undefined when it is not JSON (skipped: one unreadable referrer must not hide a good one). */
function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch {
    return undefined;
  }
}
