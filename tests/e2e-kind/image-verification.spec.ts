/**
 * Cosign-on-admission as a kubectl user meets it (DESIGN §4): a KarsImagePolicy names which images
 * must be signed by which key; a sandbox pod whose image cosign v3 signed with that key is admitted
 * with the verified digest pinned into its image; an unsigned one is refused with a message naming
 * the field, the image, its digest, the reason and the policy (also for an image volume, and for an
 * UPDATE that names a tag instead of the verified digest); a `warn` policy admits with a kubectl
 * warning; the CRD refuses a key that is no PEM public key. Images live in a loopback registry
 * (`crane registry serve`) started by this spec; signatures are made by cosign itself.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { COSIGN, pushImage, run, startRegistry } from "../image-verification/tools";
import { e2e, eventually } from "./helpers";

const { stack, k } = e2e();
const NS = "kars-img-sandbox";
let dir: string;
let registry: Awaited<ReturnType<typeof startRegistry>>;
const digests: Record<string, string> = {};
let pem: string;
let policyLatencyMs = NaN;

const policy = (name: string, images: string, mode: "enforce" | "warn", keyPem = pem) => JSON.stringify({
  apiVersion: "kars.azure.com/v1alpha1",
  kind: "KarsImagePolicy",
  metadata: { name },
  spec: { images: [images], authorities: [{ name: "release-key", key: { pem: keyPem } }], mode },
});

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(stack.dir, "image-verification-"));
  registry = await startRegistry(dir);
  run(COSIGN, ["generate-key-pair"], dir);
  run(COSIGN, ["signing-config", "create", "--out", path.join(dir, "signing-config.json")], dir);
  pem = fs.readFileSync(path.join(dir, "cosign.pub"), "utf8");
  for (const name of ["signed", "unsigned", "warned"]) digests[name] = pushImage(`${registry.host}/kars-e2e/${name}:1`, `content of ${name}`, dir);
  run(COSIGN, ["sign", "--key", path.join(dir, "cosign.key"), "--allow-insecure-registry", "-y", "--signing-config", path.join(dir, "signing-config.json"), `${registry.host}/kars-e2e/signed@${digests.signed}`], dir);
  k.ok(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: NS, labels: { "kars.azure.com/role": "sandbox", "kars.azure.com/sandbox": "img", "kars.azure.com/isolation": "standard" } } }));
  k.ok(["apply", "-f", "-"], policy("kars-e2e-images", `${registry.host}/kars-e2e/*signed`, "enforce"));
  k.ok(["apply", "-f", "-"], policy("kars-e2e-warned", `${registry.host}/kars-e2e/warned`, "warn"));
  await eventually("the default ServiceAccount", () => k(["get", "sa", "default", "-n", NS]).code === 0);
  // the policies reach the controller through its watch: wait until a server-side dry run is refused
  const t0 = Date.now();
  await eventually("the policy in effect", () => k(["run", "probe", "-n", NS, "--dry-run=server", "--image", `${registry.host}/kars-e2e/unsigned:1`]).code !== 0);
  policyLatencyMs = Date.now() - t0;
});

it("a new KarsImagePolicy takes effect within seconds", () => {
  expect(policyLatencyMs).toBeLessThan(10_000);
});

afterAll(() => {
  k(["delete", "karsimagepolicy", "kars-e2e-images", "kars-e2e-warned", "--ignore-not-found"]);
  k(["delete", "namespace", NS, "--wait=false", "--ignore-not-found"]);
  registry?.stop();
});

it("refuses a sandbox pod whose image is unsigned, naming the field, image, digest, reason and policy", () => {
  const image = `${registry.host}/kars-e2e/unsigned:1`;
  const { code, stderr } = k(["run", "unsigned", "-n", NS, "--image", image]);
  expect(code).not.toBe(0);
  expect(stderr).toContain('admission webhook "pods.sandbox.validate.kars.azure.com" denied the request');
  expect(stderr).toContain(`spec.containers[0].image: image ${image} (${digests.unsigned}): no signature found (no Sigstore bundle referrer, no .sig tag) (KarsImagePolicy kars-e2e-images) (kars image policy)`);
});

it("admits a pod whose image cosign signed with the policy's key, running the verified digest", () => {
  const image = `${registry.host}/kars-e2e/signed:1`;
  k.ok(["run", "signed", "-n", NS, "--image", image]);
  const pod = k.json<{ spec: { containers: { name: string; image: string }[] } }>(["get", "pod", "signed", "-n", NS])!;
  expect(pod.spec.containers.find(c => c.name === "signed")?.image).toBe(`${image}@${digests.signed}`);
});

it("refuses an unsigned image mounted as an image volume beside a signed container", () => {
  const signed = `${registry.host}/kars-e2e/signed:1`;
  const unsigned = `${registry.host}/kars-e2e/unsigned:1`;
  const r = k(["run", "with-volume", "-n", NS, "--image", signed, "--overrides", JSON.stringify({
    spec: { volumes: [{ name: "tools", image: { reference: unsigned } }], containers: [{ name: "with-volume", image: signed, volumeMounts: [{ name: "tools", mountPath: "/tools" }] }] },
  })]);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain(`spec.volumes[0].image.reference: image ${unsigned} (${digests.unsigned}): no signature found`);
});

it("refuses changing a running pod's image to a tag, even a signed one: only the verified digest may run", () => {
  const r = k(["set", "image", "pod/signed", "-n", NS, `signed=${registry.host}/kars-e2e/signed:1`]);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain(`spec.containers[0].image: image ${registry.host}/kars-e2e/signed:1 must name the digest it is verified as (${digests.signed})`);
});

it("admits an image a warn policy cannot verify, with a kubectl warning naming the policy", () => {
  const image = `${registry.host}/kars-e2e/warned:1`;
  const r = k(["run", "warned", "-n", NS, "--image", image]);
  expect(r.code).toBe(0);
  expect(r.stderr).toContain(`Warning: image ${image} (${digests.warned}): no signature found (no Sigstore bundle referrer, no .sig tag) (KarsImagePolicy kars-e2e-warned, mode warn)`);
  const pod = k.json<{ spec: { containers: { name: string; image: string }[] } }>(["get", "pod", "warned", "-n", NS])!;
  expect(pod.spec.containers.find(c => c.name === "warned")?.image).toBe(image);
});

it("a key pasted wrongly is refused at apply, saying how to paste it; URL and tag globs too", () => {
  const oneLine = k(["apply", "-f", "-"], policy("kars-e2e-bad", "x.example/**", "enforce", pem.replace(/\n/g, " ")));
  expect(oneLine.code).not.toBe(0);
  expect(oneLine.stderr).toContain('admission webhook "karsimagepolicies.validate.kars.azure.com" denied the request: spec.authorities[0].key.pem: not a PEM public key');
  expect(oneLine.stderr).toContain("paste cosign.pub whole, with its line breaks (in YAML: pem: |)");
  const url = k(["apply", "-f", "-"], policy("kars-e2e-bad", `http://${registry.host}/kars-e2e/**`, "enforce"));
  expect([url.code !== 0, url.stderr.includes("a glob names registry/repository, without a URL scheme")]).toEqual([true, true]);
  const tag = k(["apply", "-f", "-"], policy("kars-e2e-bad", `${registry.host}/kars-e2e/signed:1`, "enforce"));
  expect([tag.code !== 0, tag.stderr.includes("a glob matches registry/repository only, never a tag")]).toEqual([true, true]);
});

it("the CRD refuses a key that is not a PEM public key, naming the field", () => {
  const r = k(["apply", "-f", "-"], policy("kars-e2e-bad", "x/**", "enforce", "ssh-ed25519 AAAA"));
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain("spec.authorities[0].key.pem: Invalid value");
  expect(r.stderr).toContain("pem must be a PEM public key");
});
