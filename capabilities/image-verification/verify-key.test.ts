import { generateKeyPairSync } from "node:crypto";
import type { FoundSignature } from "./signature-discovery";
import { bundle, simpleSigning } from "./testdata/signatures";
import { checkWithKey, parsePublicKey } from "./verify-key";

const DIGEST = `sha256:${"1".repeat(64)}`;
const OTHER = `sha256:${"2".repeat(64)}`;

const keys = {
  "ECDSA P-256": generateKeyPairSync("ec", { namedCurve: "P-256" }),
  "ECDSA P-384": generateKeyPairSync("ec", { namedCurve: "P-384" }),
  Ed25519: generateKeyPairSync("ed25519"),
  RSA: generateKeyPairSync("rsa", { modulusLength: 2048 }),
};
const stranger = generateKeyPairSync("ec", { namedCurve: "P-256" });

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
      const s = simpleSigning(priv, OTHER);
      return { ...s, payload: Buffer.from(s.payload.toString().replace(OTHER, DIGEST)) };
    }, /does not verify with the policy's key/],
    ["a payload of another type", () => simpleSigning(priv, DIGEST, "atomic container signature"), /not a "cosign container image signature"/],
    ["an attestation of another predicate (e.g. provenance) over the digest", () => bundle(priv, DIGEST, "https://slsa.dev/provenance/v1"), /not an image signature/],
    ["a bundle that is not a bundle", () => ({ kind: "sigstore-bundle", source: "s", bundle: { mediaType: "x" } }), /not a valid Sigstore bundle/],
    ["a garbage signature", () => ({ ...simpleSigning(priv, DIGEST), signature: Buffer.from("nope") }), /signature does not (parse|verify)/],
  ])("refuses %s, saying why", (_t, make, why) => {
    const r = checkWithKey(make(), DIGEST, pub);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toMatch(why);
  });

  it("names a keyless bundle as unsupported for a key authority, not as a bad signature", () => {
    const b = bundle(priv, DIGEST);
    const keyless = { ...b, bundle: { ...(b.bundle as object), verificationMaterial: { certificate: { rawBytes: Buffer.from("cert").toString("base64") }, tlogEntries: [] } } };
    expect(checkWithKey(keyless, DIGEST, pub)).toMatchObject({ ok: false, unsupported: true });
  });

  it("parsePublicKey refuses a private key and text that is no key", () => {
    expect(() => parsePublicKey("not a key")).toThrow();
  });
});
