import { generateKeyPairSync } from "node:crypto";
import { imagePolicyFromResource } from "./image-policy-from-resource";

const pem = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" }) as string;

describe("imagePolicyFromResource", () => {
  it("reads images, named and unnamed key authorities, mode and generation", () => {
    const p = imagePolicyFromResource({ metadata: { name: "team", generation: 3 }, spec: { images: ["ghcr.io/team/**"], authorities: [{ name: "release", key: { pem } }, { key: { pem } }], mode: "warn" } });
    expect({ ...p, authorities: p.authorities.map(a => a.name) }).toEqual({ name: "team", generation: 3, images: ["ghcr.io/team/**"], authorities: ["release", "key-1"], mode: "warn" });
  });

  it.each<[string, object, RegExp]>([
    ["a key that is no key", { images: ["x/**"], authorities: [{ key: { pem: "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----" } }] }, /^spec\.authorities\[0\]\.key\.pem: not a public key/],
    ["no authorities", { images: ["x/**"], authorities: [] }, /^spec\.authorities: none$/],
    ["no spec at all", {}, /^spec\.authorities: none$/],
  ])("keeps a policy with %s as a problem (its images are refused), enforcing", (_t, spec, problem) => {
    const p = imagePolicyFromResource({ metadata: { name: "bad", generation: 1 }, spec });
    expect(p.problem).toMatch(problem);
    expect(p.mode).toBe("enforce");
  });
});
