import { generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import type { FoundSignature } from "./signature-discovery";
import { checkWithKey, COSIGN_SIGN_PREDICATE_TYPE, parsePublicKey } from "./verify-key";

const DIGEST = `sha256:${"1".repeat(64)}`;
const OTHER = `sha256:${"2".repeat(64)}`;

const keys = {
  "ECDSA P-256": generateKeyPairSync("ec", { namedCurve: "P-256" }),
  "ECDSA P-384": generateKeyPairSync("ec", { namedCurve: "P-384" }),
  Ed25519: generateKeyPairSync("ed25519"),
  RSA: generateKeyPairSync("rsa", { modulusLength: 2048 }),
};
const stranger = generateKeyPairSync("ec", { namedCurve: "P-256" });

function hashOf(k: KeyObject): string | null {
  if (k.asymmetricKeyType === "ed25519") return null;
  return k.asymmetricKeyDetails?.namedCurve === "secp384r1" ? "sha384" : "sha256";
}

/** cosign's simple-signing payload, signed as cosign signs it. */
function simpleSigning(privateKey: KeyObject, digest: string, type = "cosign container image signature"): FoundSignature {
  const payload = Buffer.from(JSON.stringify({ critical: { identity: { "docker-reference": "r/x" }, image: { "docker-manifest-digest": digest }, type }, optional: null }));
  return { kind: "simple-signing", source: "sha256:payload", payload, signature: sign(hashOf(privateKey), payload, privateKey) };
}

/** A Sigstore bundle v0.3 with a DSSE envelope over an in-toto statement, signed as cosign v3 signs (PAE). */
function bundle(privateKey: KeyObject, subjectDigest: string, predicateType = COSIGN_SIGN_PREDICATE_TYPE, extra: Record<string, unknown> = {}): FoundSignature {
  const [alg, hex] = subjectDigest.split(":");
  const statement = Buffer.from(JSON.stringify({ _type: "https://in-toto.io/Statement/v1", subject: [{ name: "r/x", digest: { [alg]: hex } }], predicateType, predicate: {} }));
  const type = "application/vnd.in-toto+json";
  const pae = Buffer.concat([Buffer.from(`DSSEv1 ${type.length} ${type} ${statement.length} `), statement]);
  const sig = sign(hashOf(privateKey), pae, privateKey);
  return {
    kind: "sigstore-bundle",
    source: "sha256:referrer",
    bundle: {
      mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
      verificationMaterial: { publicKey: { hint: "" }, tlogEntries: [], ...extra },
      dsseEnvelope: { payload: statement.toString("base64"), payloadType: type, signatures: [{ sig: sig.toString("base64"), keyid: "" }] },
    },
  };
}

describe("checkWithKey", () => {
  describe.each(Object.entries(keys))("%s", (name, pair) => {
    const pub = parsePublicKey(pair.publicKey.export({ type: "spki", format: "pem" }) as string);
    it.each<[string, () => FoundSignature, boolean]>([
      ["a simple-signing signature naming the digest", () => simpleSigning(pair.privateKey, DIGEST), true],
      // @sigstore/verify hashes ECDSA with SHA-256 (cosign's P-256 default); a P-384 bundle signed over SHA-384 is refused, never passed
      ["a bundle whose statement names the digest", () => bundle(pair.privateKey, DIGEST), name !== "ECDSA P-384"],
      ["a simple-signing signature naming another digest", () => simpleSigning(pair.privateKey, OTHER), false],
      ["a bundle whose statement names another digest", () => bundle(pair.privateKey, OTHER), false],
      ["a simple-signing signature by another key", () => simpleSigning(stranger.privateKey, DIGEST), false],
      ["a bundle by another key", () => bundle(stranger.privateKey, DIGEST), false],
    ])("%s → %p", (_t, make, ok) => {
      expect(checkWithKey(make(), DIGEST, pub).ok).toBe(ok);
    });
  });

  const pub = keys["ECDSA P-256"].publicKey;
  const priv = keys["ECDSA P-256"].privateKey;
  it.each<[string, () => FoundSignature, RegExp]>([
    ["a tampered simple-signing payload", () => {
      const s = simpleSigning(priv, OTHER) as Extract<FoundSignature, { kind: "simple-signing" }>;
      return { ...s, payload: Buffer.from(s.payload.toString().replace(OTHER, DIGEST)) };
    }, /does not verify with the policy's key/],
    ["a payload of another type", () => simpleSigning(priv, DIGEST, "atomic container signature"), /not a "cosign container image signature"/],
    ["an attestation of another predicate (e.g. provenance) over the digest", () => bundle(priv, DIGEST, "https://slsa.dev/provenance/v1"), /not an image signature/],
    ["a bundle that is not a bundle", () => ({ kind: "sigstore-bundle", source: "s", bundle: { mediaType: "x" } }), /not a valid Sigstore bundle/],
    ["a garbage signature", () => ({ ...(simpleSigning(priv, DIGEST) as Extract<FoundSignature, { kind: "simple-signing" }>), signature: Buffer.from("nope") }), /signature does not (parse|verify)/],
  ])("refuses %s, saying why", (_t, make, why) => {
    const r = checkWithKey(make(), DIGEST, pub);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toMatch(why);
  });

  it("names a keyless bundle as unsupported for a key authority, not as a bad signature", () => {
    const b = bundle(priv, DIGEST) as Extract<FoundSignature, { kind: "sigstore-bundle" }>;
    const keyless = { ...b, bundle: { ...(b.bundle as object), verificationMaterial: { certificate: { rawBytes: Buffer.from("cert").toString("base64") }, tlogEntries: [] } } };
    expect(checkWithKey(keyless, DIGEST, pub)).toMatchObject({ ok: false, unsupported: true });
  });

  it("parsePublicKey refuses a private key and text that is no key", () => {
    expect(() => parsePublicKey("not a key")).toThrow();
  });
});
