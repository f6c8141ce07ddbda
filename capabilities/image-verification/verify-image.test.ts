import { generateKeyPairSync } from "node:crypto";
import type { ImagePolicy } from "./policy-match";
import { MemoryRegistry } from "./testdata/signatures";
import { bundle, simpleSigning } from "./testdata/signatures";
import { createVerificationCaches, verifyImage } from "./verify-image";

const trusted = generateKeyPairSync("ec", { namedCurve: "P-256" });
const other = generateKeyPairSync("ec", { namedCurve: "P-256" });
const IMAGE = "registry.example/team/agent:1";
const policy = (over: Partial<ImagePolicy> = {}): ImagePolicy => ({ name: "team", generation: 1, uid: "uid-1", images: ["registry.example/team/**"], authorities: [{ name: "release", key: trusted.publicKey }], mode: "enforce", ...over });

function signedRegistry(): { reg: MemoryRegistry; digest: string } {
  const reg = new MemoryRegistry();
  const digest = reg.image("agent", "1");
  reg.attachBundle(digest, bundle(trusted.privateKey, digest).bundle);
  return { reg, digest };
}

describe("verifyImage", () => {
  it("pins what an enforce policy verified even when an overlapping warn policy fails, and says so", async () => {
    const { reg, digest } = signedRegistry();
    const v = await verifyImage(IMAGE, [policy(), policy({ name: "audit", uid: "uid-2", mode: "warn", authorities: [{ name: "other", key: other.publicKey }], images: ["**"] })], { client: reg.client(), now: () => 0 });
    expect(v.pinned).toBe(`${IMAGE}@${digest}`);
    expect(v.verifiedBy).toEqual([{ policy: "team", authority: "release" }]);
    expect(v.warnings).toEqual([expect.stringMatching(/^image registry.example\/team\/agent:1 \(sha256:[0-9a-f]{64}\): no signature verifies with the policy's authorities: .* \(KarsImagePolicy audit, mode warn\)$/)]);
    expect(v.enforced).toBe(true);
  });

  it("serves a verified verdict from the cache until the policy changes or is re-created", async () => {
    const { reg } = signedRegistry();
    const caches = createVerificationCaches();
    const deps = { client: reg.client(), now: () => 0, caches };
    await verifyImage(IMAGE, [policy()], deps);
    const reads = reg.reads.referrers;
    expect((await verifyImage(IMAGE, [policy()], deps)).verifiedBy).toHaveLength(1);
    expect(reg.reads.referrers).toBe(reads);
    // deleted and re-created with another key: generation 1 again, a new uid; the old verdict must not serve
    const recreated = policy({ uid: "uid-9", authorities: [{ name: "rotated", key: other.publicKey }] });
    await expect(verifyImage(IMAGE, [recreated], deps)).rejects.toMatchObject({ code: "invalid_signature" });
  });

  it("admits with a warning what only warn policies cover when the registry cannot be read; enforce refuses", async () => {
    const { reg } = signedRegistry();
    reg.failNextManifests = 2;
    const warned = await verifyImage(IMAGE, [policy({ mode: "warn" })], { client: reg.client(), now: () => 0 });
    expect(warned).toEqual({ image: IMAGE, digest: "", verifiedBy: [], enforced: false, warnings: ["image registry.example/team/agent:1: registry: answered 503 (KarsImagePolicy team, mode warn)"] });
    await expect(verifyImage(IMAGE, [policy()], { client: reg.client(), now: () => 0 })).rejects.toMatchObject({ code: "registry_unreachable" });
  });

  it("does not keep a warn policy's failure: a signature added afterwards counts at once", async () => {
    const reg = new MemoryRegistry();
    const digest = reg.image("agent", "1");
    const caches = createVerificationCaches();
    const deps = { client: reg.client(), now: () => 0, caches };
    expect((await verifyImage(IMAGE, [policy({ mode: "warn" })], deps)).warnings).toHaveLength(1);
    reg.attachBundle(digest, bundle(trusted.privateKey, digest).bundle);
    expect(await verifyImage(IMAGE, [policy({ mode: "warn" })], deps)).toMatchObject({ pinned: `${IMAGE}@${digest}`, warnings: [] });
  });

  it("shares one round of registry reads among admissions of the same image at once (a scale-up)", async () => {
    const { reg } = signedRegistry();
    const deps = { client: reg.client(), now: () => 0, caches: createVerificationCaches() };
    const all = await Promise.all(Array.from({ length: 20 }, () => verifyImage(IMAGE, [policy()], deps)));
    expect(new Set(all.map(v => v.pinned)).size).toBe(1);
    expect([reg.reads.manifest, reg.reads.referrers, reg.reads.blob]).toEqual([3, 1, 1]); // the tag, the referrer manifest, the .sig tag; one referrers list; one bundle
    expect(deps.caches.inflight.size).toBe(0);
  });

  it("reads one bundle layer per referrer, and a flood of referrers does not hide a legacy signature", async () => {
    const reg = new MemoryRegistry();
    const digest = reg.image("agent", "1");
    reg.attachBundle(digest, { junk: true }, 400); // one referrer, 400 layers of the same blob
    for (let i = 0; i < 30; i++) reg.attachBundle(digest, { junk: i });
    reg.attachLegacy(digest, [simpleSigning(trusted.privateKey, digest)]);
    const v = await verifyImage(IMAGE, [policy()], { client: reg.client(), now: () => 0 });
    expect(v.verifiedBy).toEqual([{ policy: "team", authority: "release" }]);
    expect(reg.reads.blob).toBeLessThanOrEqual(16 + 1);
  });

  it("says a digest the registry does not have is not found (not unsigned), naming the policy once, the digest once", async () => {
    const { reg } = signedRegistry();
    const wrong = `sha256:${"0".repeat(64)}`;
    await expect(verifyImage(`registry.example/team/agent@${wrong}`, [policy()], { client: reg.client(), now: () => 0 })).rejects.toMatchObject({
      code: "image_not_found",
      message: `image registry.example/team/agent@${wrong}: no manifest ${wrong} (KarsImagePolicy team)`,
    });
    await expect(verifyImage("registry.example/team/agent:nope", [policy()], { client: reg.client(), now: () => 0 })).rejects.toMatchObject({
      code: "image_not_found",
      message: "image registry.example/team/agent:nope: no manifest nope (KarsImagePolicy team)",
    });
  });

  it("refuses, naming the digest, a signature made for another digest (a tag moved to new content)", async () => {
    const reg = new MemoryRegistry();
    const old = reg.image("agent v1", "old");
    reg.attachBundle(old, bundle(trusted.privateKey, old).bundle);
    const now = reg.image("agent v2", "1");
    reg.attachBundle(now, bundle(trusted.privateKey, old).bundle); // the old signature copied onto the new digest
    await expect(verifyImage(IMAGE, [policy()], { client: reg.client(), now: () => 0 })).rejects.toMatchObject({
      code: "invalid_signature",
      message: expect.stringContaining(`(${now}): no signature verifies with the policy's authorities: sigstore-bundle`),
    });
  });
});
