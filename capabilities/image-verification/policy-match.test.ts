import { generateKeyPairSync } from "node:crypto";
import { parseImageReference } from "./image-reference";
import { canonicalGlob, imageGlobMatches, matchingPolicies, type ImagePolicy } from "./policy-match";

describe("imageGlobMatches", () => {
  it.each<[string, string, boolean]>([
    ["ghcr.io/org/*", "ghcr.io/org/agent:v1", true],
    ["ghcr.io/org/*", "ghcr.io/org/team/agent:v1", false],
    ["ghcr.io/org/**", "ghcr.io/org/team/agent:v1", true],
    ["ghcr.io/org/**", "ghcr.io/orgx/agent", false],
    ["docker.io/library/*", "busybox", true],
    ["busybox", "busybox", false],
    ["ghcr.io/org/agent", `ghcr.io/org/agent@sha256:${"b".repeat(64)}`, true],
    ["ghcr.io/org/agent:v1", "ghcr.io/org/agent:v1", false],
    ["ghcr.io/org/agen?", "ghcr.io/org/agent", true],
    ["ghcr.io/org/a.ent", "ghcr.io/org/agent", false],
    ["**", "anything.example/x/y", true],
    // other spellings of the same server cannot side-step a policy
    ["ghcr.io/org/*", "GHCR.io:443/org/agent", true],
    ["ghcr.io/org/*", "ghcr.io./org/agent", true],
    ["docker.io/library/*", "registry-1.docker.io/library/busybox", true],
  ])("%s against %s → %p", (glob, image, expected) => {
    expect(imageGlobMatches(glob, parseImageReference(image))).toBe(expected);
  });

  it("lists the policies whose globs match, in order", () => {
    const key = generateKeyPairSync("ed25519").publicKey;
    const p = (name: string, images: string[]): ImagePolicy => ({ name, generation: 1, images, authorities: [{ name: "k", key }], mode: "enforce" });
    const policies = [p("a", ["ghcr.io/**"]), p("b", ["docker.io/**"]), p("c", ["ghcr.io/org/agent", "quay.io/**"])];
    expect(matchingPolicies(policies, parseImageReference("ghcr.io/org/agent:v1")).map(x => x.name)).toEqual(["a", "c"]);
    expect(matchingPolicies(policies, parseImageReference("registry.k8s.io/pause"))).toEqual([]);
  });
});

describe("canonicalGlob", () => {
  it.each<[string, string]>([
    ["busybox", "docker.io/library/busybox"],
    ["myorg/*", "docker.io/myorg/*"],
    ["index.docker.io/library/*", "docker.io/library/*"],
    ["registry-1.docker.io/**", "docker.io/**"],
    ["docker.io/busybox", "docker.io/library/busybox"],
    ["Registry.Example.com/**", "registry.example.com/**"],
    ["registry.example.com:443/team/*", "registry.example.com/team/*"],
    ["registry.example.com./team/*", "registry.example.com/team/*"],
    ["127.0.0.1:*/kars-e2e/**", "127.0.0.1:*/kars-e2e/**"],
    ["**", "**"],
    ["*.example.com/**", "*.example.com/**"],
  ])("%s → %s", (glob, canonical) => {
    expect(canonicalGlob(glob)).toBe(canonical);
  });

  it.each<[string, string]>([
    ["busybox", "busybox:1.36"],
    ["myorg/*", "myorg/agent"],
    ["Registry.Example.com/**", "registry.example.com/team/agent"],
    ["registry-1.docker.io/**", "docker.io/library/busybox"],
  ])("a glob written as %s matches %s once canonical", (glob, image) => {
    expect(imageGlobMatches(canonicalGlob(glob), parseImageReference(image))).toBe(true);
  });
});
