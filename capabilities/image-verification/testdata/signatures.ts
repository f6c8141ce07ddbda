/**
 * Test helpers: cosign-shaped signatures made with node:crypto (the formats cosign writes: its
 * simple-signing payload; a Sigstore bundle v0.3 with a DSSE envelope over an in-toto statement), and
 * an in-memory registry with the RegistryClient methods signature discovery uses.
 */
import { createHash, sign, type KeyObject } from "node:crypto";
import { ImageVerificationError } from "../errors";
import type { FetchedManifest, OciDescriptor, OciManifest, RegistryClient } from "../registry-client";
import type { FoundSignature } from "../signature-discovery";
import { COSIGN_SIGN_PREDICATE_TYPE } from "../verify-key";

/** The hash cosign signs with for a key (null for Ed25519). */
export function hashOf(k: KeyObject): string | null {
  if (k.asymmetricKeyType === "ed25519") return null;
  return k.asymmetricKeyDetails?.namedCurve === "secp384r1" ? "sha384" : "sha256";
}

/** cosign's simple-signing payload for `digest`, signed as cosign signs it. */
export function simpleSigning(privateKey: KeyObject, digest: string, type = "cosign container image signature"): Extract<FoundSignature, { kind: "simple-signing" }> {
  const payload = Buffer.from(JSON.stringify({ critical: { identity: { "docker-reference": "r/x" }, image: { "docker-manifest-digest": digest }, type }, optional: null }));
  return { kind: "simple-signing", source: "sha256:payload", payload, signature: sign(hashOf(privateKey), payload, privateKey) };
}

/** A Sigstore bundle v0.3 (DSSE over an in-toto statement naming `subjectDigest`), signed as cosign v3 signs (PAE). */
export function bundle(privateKey: KeyObject, subjectDigest: string, predicateType = COSIGN_SIGN_PREDICATE_TYPE): Extract<FoundSignature, { kind: "sigstore-bundle" }> {
  const [alg, hex] = subjectDigest.split(":");
  const statement = Buffer.from(JSON.stringify({ _type: "https://in-toto.io/Statement/v1", subject: [{ name: "r/x", digest: { [alg]: hex } }], predicateType, predicate: {} }));
  const type = "application/vnd.in-toto+json";
  const pae = Buffer.concat([Buffer.from(`DSSEv1 ${type.length} ${type} ${statement.length} `), statement]);
  return {
    kind: "sigstore-bundle",
    source: "sha256:referrer",
    bundle: {
      mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
      verificationMaterial: { publicKey: { hint: "" }, tlogEntries: [] },
      dsseEnvelope: { payload: statement.toString("base64"), payloadType: type, signatures: [{ sig: sign(hashOf(privateKey), pae, privateKey).toString("base64"), keyid: "" }] },
    },
  };
}

/** `sha256:<hex>` of `b` (a test digest). */
export const sha256 = (b: Buffer | string): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/**
 * An in-memory registry: tags → manifest bytes, digests → manifests and blobs, referrers by subject.
 * `reads` counts every call; `fail` makes the next N calls of a kind throw registry_unreachable.
 */
export class MemoryRegistry {
  readonly manifests = new Map<string, Buffer>();
  readonly blobs = new Map<string, Buffer>();
  readonly tags = new Map<string, string>();
  readonly referrerIndex = new Map<string, OciDescriptor[]>();
  reads = { manifest: 0, blob: 0, referrers: 0 };
  failNextManifests = 0;

  putBlob(bytes: Buffer): OciDescriptor {
    const digest = sha256(bytes);
    this.blobs.set(digest, bytes);
    return { mediaType: "application/octet-stream", digest, size: bytes.length };
  }

  putManifest(json: OciManifest, tag?: string): string {
    const bytes = Buffer.from(JSON.stringify(json));
    const digest = sha256(bytes);
    this.manifests.set(digest, bytes);
    if (tag) this.tags.set(tag, digest);
    return digest;
  }

  /** An image with one layer of `content`, tagged `tag`; returns its digest. */
  image(content: string, tag: string): string {
    return this.putManifest({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", layers: [this.putBlob(Buffer.from(content))] }, tag);
  }

  /** Attaches a bundle as a referrer of `subject` (one manifest, `layers` copies of its layer). */
  attachBundle(subject: string, b: unknown, layers = 1): void {
    const layer = { ...this.putBlob(Buffer.from(JSON.stringify(b))), mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json" };
    const digest = this.putManifest({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", artifactType: "application/vnd.dev.sigstore.bundle.v0.3+json", layers: Array(layers).fill(layer) });
    const list = this.referrerIndex.get(subject) ?? [];
    list.push({ mediaType: "application/vnd.oci.image.manifest.v1+json", digest, size: 1, artifactType: "application/vnd.dev.sigstore.bundle.v0.3+json" });
    this.referrerIndex.set(subject, list);
  }

  /** Writes the legacy `sha256-<hex>.sig` tag of `subject` with these simple-signing signatures. */
  attachLegacy(subject: string, sigs: Extract<FoundSignature, { kind: "simple-signing" }>[]): void {
    const layers = sigs.map(s => ({ ...this.putBlob(s.payload), mediaType: "application/vnd.dev.cosign.simplesigning.v1+json", annotations: { "dev.cosignproject.cosign/signature": s.signature.toString("base64") } }));
    this.putManifest({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", layers }, `${subject.replace(":", "-")}.sig`);
  }

  /** A RegistryClient over this registry (the methods discovery and verifyImage call). */
  client(): RegistryClient {
    const fake = {
      manifest: async (r: string, repo: string, reference: string): Promise<FetchedManifest> => {
        this.reads.manifest++;
        if (this.failNextManifests > 0) {
          this.failNextManifests--;
          throw new ImageVerificationError("registry_unreachable", "registry: answered 503");
        }
        const digest = reference.includes(":") ? reference : this.tags.get(reference);
        const bytes = digest ? this.manifests.get(digest) : undefined;
        if (!digest || !bytes) throw new ImageVerificationError("image_not_found", `${r}/${repo}: no manifest ${reference}`);
        return { digest, mediaType: "application/vnd.oci.image.manifest.v1+json", bytes, json: JSON.parse(bytes.toString()) as OciManifest };
      },
      resolveTag: async (r: string, repo: string, tag: string): Promise<string> => {
        this.reads.manifest++;
        if (this.failNextManifests > 0) {
          this.failNextManifests--;
          throw new ImageVerificationError("registry_unreachable", "registry: answered 503");
        }
        const digest = tag.includes(":") ? (this.manifests.has(tag) ? tag : undefined) : this.tags.get(tag);
        if (!digest) throw new ImageVerificationError("image_not_found", `${r}/${repo}: no manifest ${tag}`);
        return digest;
      },
      blob: async (_r: string, _repo: string, digest: string): Promise<Buffer> => {
        this.reads.blob++;
        const b = this.blobs.get(digest);
        if (!b) throw new ImageVerificationError("image_not_found", `no blob ${digest}`);
        return b;
      },
      referrers: async (_r: string, _repo: string, digest: string): Promise<OciDescriptor[]> => {
        this.reads.referrers++;
        return this.referrerIndex.get(digest) ?? [];
      },
    };
    return fake as unknown as RegistryClient;
  }
}
