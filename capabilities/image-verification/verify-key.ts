import { createPublicKey, verify as cryptoVerify, type KeyObject } from "node:crypto";
import { bundleFromJSON, type Bundle } from "@sigstore/bundle";
import { toSignedEntity, Verifier, type TrustMaterial } from "@sigstore/verify";
import type { FoundSignature } from "./signature-discovery";

/** `critical.type` of cosign's simple-signing payload (cosign spec, "Signature Payload Format"). */
export const COSIGN_PAYLOAD_TYPE = "cosign container image signature";
/** The in-toto predicate type cosign v3 signs for an image signature (PITFALLS "Sigstore / cosign"). */
export const COSIGN_SIGN_PREDICATE_TYPE = "https://sigstore.dev/cosign/sign/v1";
/** DSSE payload type of an in-toto statement. */
export const IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";

/** The outcome of checking one signature against one key: ok, or why not (lower-case, for the refusal message). */
export type KeyCheck = { ok: true } | { ok: false; reason: string; unsupported?: boolean };

/**
 * Parses a PEM public key (SPKI: ECDSA P-256/P-384/P-521, Ed25519, RSA) as a policy's key authority
 * gives it. Throws an Error naming the problem (a bad policy is reported by its reconciler/admission,
 * never treated as "no signature").
 */
export function parsePublicKey(pem: string): KeyObject {
  const key = createPublicKey({ key: pem, format: "pem" });
  if (key.type !== "public") throw new Error("not a public key");
  return key;
}

/**
 * Checks a signature found for `digest` against `key`, fail closed:
 * - cosign's legacy simple-signing signature: the signature over the payload bytes (ECDSA with the
 *   curve's hash, Ed25519, RSA PKCS#1 v1.5 SHA-256; cosign's `sigstore/pkg/signature` defaults), then
 *   the payload must be `cosign container image signature` naming exactly `digest`
 *   (`critical.image.docker-manifest-digest`);
 * - a Sigstore bundle v0.3 (cosign v3) with a public key: the DSSE envelope's signature, checked by
 *   @sigstore/verify against `key` (transparency-log entries are not required, and are not checked
 *   without a log's key: this is key-based trust), then its in-toto statement must be cosign's image
 *   signature predicate with a subject of exactly `digest`. (@sigstore/verify hashes ECDSA signatures
 *   with SHA-256: P-256 keys, cosign's default; a P-384 bundle signed over SHA-384 does not verify.)
 * A keyless signature (a certificate instead of a key) is not this check's: `unsupported`.
 */
export function checkWithKey(sig: FoundSignature, digest: string, key: KeyObject): KeyCheck {
  return sig.kind === "simple-signing" ? checkSimpleSigning(sig.payload, sig.signature, digest, key) : checkBundle(sig.bundle, digest, key);
}

function checkSimpleSigning(payload: Buffer, signature: Buffer, digest: string, key: KeyObject): KeyCheck {
  let valid: boolean;
  try {
    valid = cryptoVerify(hashFor(key), payload, key, signature);
  } catch (err) {
    return { ok: false, reason: `signature does not parse for this key (${(err as Error).message})` };
  }
  if (!valid) return { ok: false, reason: "signature does not verify with the policy's key" };
  let doc: { critical?: { type?: unknown; image?: { "docker-manifest-digest"?: unknown } } };
  try {
    doc = JSON.parse(payload.toString("utf8")) as typeof doc;
  } catch {
    return { ok: false, reason: "the signed payload is not JSON" };
  }
  if (doc?.critical?.type !== COSIGN_PAYLOAD_TYPE) return { ok: false, reason: `the signed payload is not a ${JSON.stringify(COSIGN_PAYLOAD_TYPE)}` };
  const named = doc.critical.image?.["docker-manifest-digest"];
  if (named !== digest) return { ok: false, reason: `the signed payload names ${typeof named === "string" ? named.slice(0, 80) : "no digest"}, not ${digest}` };
  return { ok: true };
}

function checkBundle(json: unknown, digest: string, key: KeyObject): KeyCheck {
  let bundle: Bundle;
  try {
    bundle = bundleFromJSON(json);
  } catch (err) {
    return { ok: false, reason: `not a valid Sigstore bundle (${(err as Error).message})`, unsupported: true };
  }
  if (bundle.verificationMaterial.content.$case !== "publicKey") return { ok: false, reason: "a keyless signature (certificate), the policy names a key", unsupported: true };
  if (bundle.content.$case !== "dsseEnvelope") return { ok: false, reason: "a bundle with a message signature, not a DSSE envelope", unsupported: true };
  const envelope = bundle.content.dsseEnvelope;
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) return { ok: false, reason: `DSSE payload type ${JSON.stringify(envelope.payloadType.slice(0, 80))}, not ${IN_TOTO_PAYLOAD_TYPE}`, unsupported: true };
  // key-based trust: the signature is what is checked; log entries would need a log's key to be checked at all
  const keyed: Bundle = { ...bundle, verificationMaterial: { ...bundle.verificationMaterial, tlogEntries: [], timestampVerificationData: undefined } };
  const trust: TrustMaterial = { certificateAuthorities: [], timestampAuthorities: [], tlogs: [], ctlogs: [], publicKey: () => ({ publicKey: key, validFor: () => true }) };
  try {
    new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(toSignedEntity(keyed));
  } catch (err) {
    return { ok: false, reason: `signature does not verify with the policy's key (${(err as Error).message})` };
  }
  let statement: { predicateType?: unknown; subject?: { digest?: Record<string, unknown> }[] };
  try {
    statement = JSON.parse(envelope.payload.toString("utf8")) as typeof statement;
  } catch {
    return { ok: false, reason: "the signed in-toto statement is not JSON" };
  }
  if (statement?.predicateType !== COSIGN_SIGN_PREDICATE_TYPE) return { ok: false, reason: `the signed statement's predicate is ${JSON.stringify(String(statement?.predicateType).slice(0, 80))}, not an image signature (${COSIGN_SIGN_PREDICATE_TYPE})` };
  const [alg, hex] = digest.split(":");
  const subjects = Array.isArray(statement.subject) ? statement.subject : [];
  if (!subjects.some(s => s?.digest?.[alg] === hex)) return { ok: false, reason: `the signed statement's subjects do not include ${digest}` };
  return { ok: true };
}

/** The hash cosign signs with for this key type (null for Ed25519, whose signature hashes itself). */
function hashFor(key: KeyObject): string | null {
  if (key.asymmetricKeyType === "ed25519") return null;
  if (key.asymmetricKeyType === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    return curve === "secp384r1" ? "sha384" : curve === "secp521r1" ? "sha512" : "sha256";
  }
  return "sha256";
}
