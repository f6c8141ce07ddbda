import { generateKeyPairSync } from "node:crypto";
import type { V1Pod } from "@kubernetes/client-node";
import { ImageVerificationError } from "./errors";
import { podImages, verifyPodImages, withPinnedImages } from "./pod-images";
import type { ImagePolicy } from "./policy-match";
import type { RegistryClient } from "./registry-client";
import { bundle, MemoryRegistry } from "./testdata/signatures";
import { createVerificationCaches } from "./verify-image";

const D = `sha256:${"c".repeat(64)}`;
const pod: V1Pod = {
  spec: {
    initContainers: [{ name: "guard", image: "ghcr.io/kars/guard:1" }],
    containers: [{ name: "agent", image: "ghcr.io/team/agent:1" }, { name: "router", image: "ghcr.io/kars/router:1" }, { name: "again", image: "ghcr.io/team/agent:1" }],
    ephemeralContainers: [{ name: "debug", image: "ghcr.io/team/debug:1" }],
    volumes: [{ name: "tools", image: { reference: "ghcr.io/team/tools:1" } }, { name: "scratch", emptyDir: {} }],
  },
};

describe("podImages", () => {
  it("lists every image with its field path", () => {
    expect(podImages(pod).map(i => `${i.path}=${i.image}`)).toEqual([
      "spec.initContainers[0].image=ghcr.io/kars/guard:1",
      "spec.containers[0].image=ghcr.io/team/agent:1",
      "spec.containers[1].image=ghcr.io/kars/router:1",
      "spec.containers[2].image=ghcr.io/team/agent:1",
      "spec.ephemeralContainers[0].image=ghcr.io/team/debug:1",
      "spec.volumes[0].image.reference=ghcr.io/team/tools:1",
    ]);
  });
});

describe("verifyPodImages", () => {
  const key = generateKeyPairSync("ed25519").publicKey;
  const policy = (images: string[], extra: Partial<ImagePolicy> = {}): ImagePolicy => ({ name: "p", generation: 1, images, authorities: [{ name: "k", key }], mode: "enforce", ...extra });
  /** A registry client whose manifests resolve every tag to D, and that has no signatures for anything; counts tag lookups. */
  function client(): { client: RegistryClient; lookups: string[] } {
    const lookups: string[] = [];
    const fake = {
      manifest: async () => {
        throw new ImageVerificationError("image_not_found", "none");
      },
      resolveTag: async (_r: string, repo: string, tag: string) => {
        lookups.push(`${repo}:${tag}`);
        return D;
      },
      referrers: async () => [],
    };
    return { client: fake as unknown as RegistryClient, lookups };
  }

  it("refuses each matching image at its path, looking each distinct image up once; others are left alone", async () => {
    const c = client();
    const v = await verifyPodImages(pod, [policy(["ghcr.io/team/**"])], { client: c.client, now: () => 0, caches: createVerificationCaches() });
    expect(v.violations.map(x => x.path)).toEqual(["spec.containers[0].image", "spec.containers[2].image", "spec.ephemeralContainers[0].image", "spec.volumes[0].image.reference"]);
    expect(v.violations[0]).toEqual({ path: "spec.containers[0].image", message: `image ghcr.io/team/agent:1 (${D}): no signature found (no Sigstore bundle referrer, no .sig tag) (KarsImagePolicy p)`, rule: "kars image policy" });
    expect(c.lookups.sort()).toEqual(["team/agent:1", "team/debug:1", "team/tools:1"]);
    expect([v.pins, v.warnings]).toEqual([[], []]);
  });

  it("turns a warn policy's refusal into one warning per image and admits", async () => {
    const v = await verifyPodImages(pod, [policy(["ghcr.io/team/agent"], { mode: "warn" })], { client: client().client, now: () => 0 });
    expect([v.violations, v.warnings.length]).toEqual([[], 1]);
  });

  it("refuses a matching image when the policy cannot be used (fail closed)", async () => {
    const v = await verifyPodImages(pod, [policy(["ghcr.io/kars/guard"], { authorities: [], problem: "spec.authorities[0].key.pem: not a public key" })], { client: client().client, now: () => 0 });
    expect(v.violations).toEqual([{ path: "spec.initContainers[0].image", message: `image ghcr.io/kars/guard:1 (${D}): the policy cannot be used: spec.authorities[0].key.pem: not a public key (KarsImagePolicy p)`, rule: "kars image policy" }]);
  });

  it("on UPDATE verifies only images new or changed at their path (an admitted pod's label change reads no registry)", async () => {
    const c = client();
    const updated: V1Pod = { spec: { ...pod.spec!, containers: [{ name: "agent", image: "ghcr.io/team/agent:2" }, ...pod.spec!.containers.slice(1)] } };
    const v = await verifyPodImages(updated, [policy(["ghcr.io/**"])], { client: c.client, now: () => 0, caches: createVerificationCaches() }, pod);
    expect([c.lookups, v.violations.map(x => x.path)]).toEqual([["team/agent:2"], ["spec.containers[0].image"]]);
    const same = client();
    expect((await verifyPodImages(pod, [policy(["ghcr.io/**"])], { client: same.client, now: () => 0 }, pod)).violations).toEqual([]);
    expect(same.lookups).toEqual([]);
  });

  it("checks nothing, not even the reference's grammar, when there is no policy; with policies an unparseable reference is refused", async () => {
    const odd: V1Pod = { spec: { containers: [{ name: "a", image: "REPLACE-ME/your-agent:latest" }] } };
    expect(await verifyPodImages(odd, [], { client: client().client, now: () => 0 })).toEqual({ pins: [], violations: [], warnings: [] });
    const v = await verifyPodImages(odd, [policy(["quay.io/**"])], { client: client().client, now: () => 0 });
    expect(v.violations).toEqual([{ path: "spec.containers[0].image", message: expect.stringMatching(/^image reference "REPLACE-ME\/your-agent:latest": repository "REPLACE-ME\/your-agent" is not a valid repository name/), rule: "kars image policy" }]);
  });

  it("refuses a pod naming more distinct images than it verifies, and works on a few at a time", async () => {
    const many: V1Pod = { spec: { containers: Array.from({ length: 65 }, (_, i) => ({ name: `c${i}`, image: `ghcr.io/team/app-${i}:1` })) } };
    const c = client();
    const v = await verifyPodImages(many, [policy(["quay.io/**"])], { client: c.client, now: () => 0 });
    expect(v.violations).toEqual([{ path: "spec", message: "names 65 distinct images; kars verifies at most 64 per pod", rule: "kars image policy" }]);
    expect(c.lookups).toEqual([]);
    let running = 0;
    let most = 0;
    const slow = {
      ...client().client,
      resolveTag: async () => {
        most = Math.max(most, ++running);
        await new Promise(r => setTimeout(r, 5));
        running--;
        return D;
      },
      manifest: async () => {
        throw new ImageVerificationError("image_not_found", "none");
      },
      referrers: async () => [],
    } as unknown as RegistryClient;
    const some: V1Pod = { spec: { containers: Array.from({ length: 20 }, (_, i) => ({ name: `c${i}`, image: `ghcr.io/team/app-${i}:1` })) } };
    expect((await verifyPodImages(some, [policy(["ghcr.io/**"])], { client: slow, now: () => 0 })).violations).toHaveLength(20);
    expect(most).toBe(6);
  });

  it("makes no registry call when no policy matches", async () => {
    const c = client();
    expect(await verifyPodImages(pod, [policy(["quay.io/**"])], { client: c.client, now: () => 0 })).toEqual({ pins: [], violations: [], warnings: [] });
    expect(c.lookups).toEqual([]);
  });
});

describe("withPinnedImages", () => {
  it("writes pinned references at their paths, on a copy", () => {
    const pinned = withPinnedImages(pod, [{ path: "spec.containers[2].image", image: `ghcr.io/team/agent:1@${D}` }, { path: "spec.initContainers[0].image", image: `ghcr.io/kars/guard:1@${D}` }]);
    expect(podImages(pinned).map(i => i.image)).toEqual([`ghcr.io/kars/guard:1@${D}`, "ghcr.io/team/agent:1", "ghcr.io/kars/router:1", `ghcr.io/team/agent:1@${D}`, "ghcr.io/team/debug:1", "ghcr.io/team/tools:1"]);
    expect(podImages(withPinnedImages(pod, [{ path: "spec.volumes[0].image.reference", image: `ghcr.io/team/tools:1@${D}` }]))[5].image).toBe(`ghcr.io/team/tools:1@${D}`);
    expect(pod.spec!.containers[2].image).toBe("ghcr.io/team/agent:1");
  });
});

describe("verifyPodImages with requirePinned (the validating webhook)", () => {
  const trusted = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const one: V1Pod = { spec: { containers: [{ name: "agent", image: "registry.example/team/agent:1" }] } };
  const enforce: ImagePolicy = { name: "team", generation: 1, images: ["registry.example/team/**"], authorities: [{ name: "release", key: trusted.publicKey }], mode: "enforce" };

  it("refuses a verified image that is not pinned (the mutating webhook could not pin it, or an UPDATE named a tag)", async () => {
    const reg = new MemoryRegistry();
    const digest = reg.image("agent", "1");
    reg.attachBundle(digest, bundle(trusted.privateKey, digest).bundle);
    // the mutating webhook met a 503 and pinned nothing; the validating webhook's own check passes, yet the tag is refused
    reg.failNextManifests = 1;
    const mutate = await verifyPodImages(one, [enforce], { client: reg.client(), now: () => 0 });
    expect(mutate.pins).toEqual([]);
    const validate = await verifyPodImages(one, [enforce], { client: reg.client(), now: () => 0 }, undefined, { requirePinned: true });
    expect(validate.violations).toEqual([{ path: "spec.containers[0].image", message: `image registry.example/team/agent:1 must name the digest it is verified as (${digest}): kars pins verified images when a pod is created; give the digest when changing one (name@${digest})`, rule: "kars image policy" }]);
    // pinned, it passes
    const pinned = withPinnedImages(one, [{ path: "spec.containers[0].image", image: `registry.example/team/agent:1@${digest}` }]);
    expect((await verifyPodImages(pinned, [enforce], { client: reg.client(), now: () => 0 }, undefined, { requirePinned: true })).violations).toEqual([]);
  });

  it("lets a warn-only image stay unpinned", async () => {
    const reg = new MemoryRegistry();
    reg.image("agent", "1");
    const v = await verifyPodImages(one, [{ ...enforce, mode: "warn" }], { client: reg.client(), now: () => 0 }, undefined, { requirePinned: true });
    expect([v.violations, v.warnings.length]).toEqual([[], 1]);
  });
});
