import { generateKeyPairSync } from "node:crypto";
import { imagePolicyFromResource, imagePolicyProblems } from "./image-policy-from-resource";

const pem = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" }) as string;

describe("imagePolicyFromResource", () => {
  it("reads images, named and unnamed key authorities, mode and generation", () => {
    const p = imagePolicyFromResource({ metadata: { name: "team", generation: 3 }, spec: { images: ["ghcr.io/team/**"], authorities: [{ name: "release", key: { pem } }, { key: { pem } }], mode: "warn" } });
    expect({ ...p, authorities: p.authorities.map(a => a.name) }).toEqual({ name: "team", generation: 3, images: ["ghcr.io/team/**"], authorities: ["release", "key-1"], mode: "warn" });
  });

  it.each<[string, object, RegExp]>([
    ["a key that is no key", { images: ["x/**"], authorities: [{ key: { pem: "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----" } }] }, /^spec\.authorities\[0\]\.key\.pem: not a PEM public key \(.*\): paste cosign\.pub whole, with its line breaks \(in YAML: pem: \|\)$/],
    ["no authorities", { images: ["x/**"], authorities: [] }, /^spec\.authorities: none$/],
    ["no spec at all", {}, /^spec\.authorities: none$/],
  ])("keeps a policy with %s as a problem (its images are refused), enforcing", (_t, spec, problem) => {
    const p = imagePolicyFromResource({ metadata: { name: "bad", generation: 1 }, spec });
    expect(p.problem).toMatch(problem);
    expect(p.mode).toBe("enforce");
  });
});

describe("imagePolicyProblems (the admission check of a KarsImagePolicy)", () => {
  it.each<[string, object, string[]]>([
    ["a key pasted on one line", { images: ["ghcr.io/**"], authorities: [{ key: { pem: pem.replace(/\n/g, " ") } }] }, ["spec.authorities[0].key.pem"]],
    ["a key with literal \\n", { images: ["ghcr.io/**"], authorities: [{ key: { pem: pem.replace(/\n/g, "\\n") } }] }, ["spec.authorities[0].key.pem"]],
    ["a truncated key", { images: ["ghcr.io/**"], authorities: [{ key: { pem: pem.slice(0, 80) } }] }, ["spec.authorities[0].key.pem"]],
    ["a URL glob", { images: ["http://127.0.0.1:5055/team/**"], authorities: [{ key: { pem } }] }, ["spec.images[0]"]],
    ["a glob with a tag", { images: ["127.0.0.1:5055/team/agent:1"], authorities: [{ key: { pem } }] }, ["spec.images[0]"]],
    ["a glob with a digest", { images: [`ghcr.io/org/agent@sha256:${"a".repeat(64)}`], authorities: [{ key: { pem } }] }, ["spec.images[0]"]],
    ["nothing wrong (a registry with a port)", { images: ["127.0.0.1:5055/team/**"], authorities: [{ key: { pem } }] }, []],
  ])("%s", (_t, spec, paths) => {
    expect(imagePolicyProblems(spec).violations.map(v => v.path)).toEqual(paths);
  });

  it("says what a URL or tag glob should be, and warns where a glob is matched otherwise than written", () => {
    const r = imagePolicyProblems({ images: ["http://r.example/team/**", "r.example/team/app:1", "myorg/*", "GHCR.io/org/**", "ghcr.io/org/**"], authorities: [{ key: { pem } }] });
    expect(r.violations.map(v => v.message)).toEqual([
      '"http://r.example/team/**" names a URL scheme; write registry/repository globs, e.g. ghcr.io/org/**',
      '"r.example/team/app:1" names a tag or digest; globs match registry/repository only (every tag and digest of it)',
    ]);
    expect(r.warnings).toEqual(['spec.images[2]: "myorg/*" is matched as "docker.io/myorg/*"', 'spec.images[3]: "GHCR.io/org/**" is matched as "ghcr.io/org/**"']);
  });
});
