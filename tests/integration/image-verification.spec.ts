/**
 * Cosign-on-admission's core (capabilities/image-verification) against real components: a loopback
 * OCI registry (`crane registry serve`, which has no referrers API, so cosign v3 and kars both use the
 * referrers tag schema), images pushed by crane, and signatures made by cosign v3 itself — its default
 * Sigstore bundle (DSSE, attached as a referrer) and its legacy `.sig` tag format — with cosign's own
 * key pairs. Proves: both formats verify; the verified digest is pinned; an unsigned image, an image
 * signed by another key, a moved tag, a registry that does not answer in time and one that is not
 * there are each refused with their reason class, naming the image and digest; warn mode admits and
 * warns; an image no policy matches costs no registry work.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { ImageVerificationError } from "../../capabilities/image-verification/errors";
import type { ImagePolicy } from "../../capabilities/image-verification/policy-match";
import { RegistryClient } from "../../capabilities/image-verification/registry-client";
import { createVerificationCaches, verifyImage } from "../../capabilities/image-verification/verify-image";
import { parsePublicKey } from "../../capabilities/image-verification/verify-key";
import { COSIGN, CRANE, freePort, pushImage, run, startRegistry } from "../image-verification/tools";

jest.setTimeout(120_000);

let dir: string;
let registry: Awaited<ReturnType<typeof startRegistry>>;
let client: RegistryClient;
let trusted: ImagePolicy;
const digests: Record<string, string> = {};

/** A cosign key pair in `dir/<name>.key|.pub`; returns the public key's PEM. */
function keyPair(name: string): string {
  const sub = path.join(dir, name);
  fs.mkdirSync(sub);
  run(COSIGN, ["generate-key-pair"], sub);
  return fs.readFileSync(path.join(sub, "cosign.pub"), "utf8");
}

function cosignSign(keyName: string, ref: string, legacy: boolean): void {
  const key = path.join(dir, keyName, "cosign.key");
  const format = legacy ? ["--new-bundle-format=false", "--use-signing-config=false", "--tlog-upload=false"] : ["--signing-config", path.join(dir, "signing-config.json")];
  run(COSIGN, ["sign", "--key", key, "--allow-insecure-registry", "-y", ...format, ref], dir);
}

const policy = (over: Partial<ImagePolicy> = {}): ImagePolicy => ({ ...trusted, ...over });
const verify = (image: string, policies: ImagePolicy[], deadlineMs?: number) => verifyImage(image, policies, { client, now: Date.now, caches: createVerificationCaches(), ...(deadlineMs ? { deadlineMs } : {}) });
async function refusal(p: Promise<unknown>): Promise<ImageVerificationError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ImageVerificationError);
  return err as ImageVerificationError;
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "kars-image-verification-"));
  registry = await startRegistry(dir);
  client = new RegistryClient({ plainHttp: [registry.host] });
  // a signing config with no transparency log or timestamp service: signing stays on this machine
  run(COSIGN, ["signing-config", "create", "--out", path.join(dir, "signing-config.json")], dir);
  const trustedPem = keyPair("trusted");
  keyPair("stranger");
  const r = registry.host;
  for (const name of ["bundle", "legacy", "unsigned", "stranger", "moved", "moved-to"]) digests[name] = pushImage(`${r}/team/${name}:1`, `content of ${name}`, dir);
  cosignSign("trusted", `${r}/team/bundle@${digests.bundle}`, false);
  cosignSign("trusted", `${r}/team/legacy@${digests.legacy}`, true);
  cosignSign("stranger", `${r}/team/stranger@${digests.stranger}`, false);
  cosignSign("trusted", `${r}/team/moved@${digests.moved}`, false);
  // multi-arch: an index of two platform images; cosign signs what it is given (the index, or its platform manifests)
  for (const name of ["multi", "multi-platforms-only"]) {
    const parts = [0, 1].map(i => pushImage(`${r}/team/${name}-part${i}:1`, `platform ${i} of ${name}`, dir));
    run(CRANE, ["index", "append", "--insecure", ...parts.flatMap((d, i) => ["-m", `${r}/team/${name}-part${i}@${d}`]), "-t", `${r}/team/${name}:1`], dir);
    digests[name] = run(CRANE, ["digest", "--insecure", `${r}/team/${name}:1`], dir).trim();
    digests[`${name}-parts`] = parts.join(",");
  }
  cosignSign("trusted", `${r}/team/multi@${digests.multi}`, false);
  for (const [i, d] of digests["multi-platforms-only-parts"].split(",").entries()) cosignSign("trusted", `${r}/team/multi-platforms-only-part${i}@${d}`, false);
  trusted = { name: "team-images", generation: 1, images: [`${r}/team/**`], authorities: [{ name: "release-key", key: parsePublicKey(trustedPem) }], mode: "enforce" };
});

afterAll(async () => {
  registry?.stop();
  await client?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

it.each([
  ["a cosign v3 Sigstore bundle (referrer)", "bundle"],
  ["a legacy cosign .sig signature", "legacy"],
])("verifies %s by tag, and pins the verified digest into the pod's spelling", async (_t, name) => {
  const image = `${registry.host}/team/${name}:1`;
  const v = await verify(image, [policy()]);
  expect(v).toEqual({ image, digest: digests[name], pinned: `${image}@${digests[name]}`, verifiedBy: [{ policy: "team-images", authority: "release-key" }], enforced: true, warnings: [] });
});

it("verifies a multi-arch image by its index digest, the subject `cosign sign image:tag` signs, and pins that", async () => {
  const image = `${registry.host}/team/multi:1`;
  expect(await verify(image, [policy()])).toMatchObject({ digest: digests.multi, pinned: `${image}@${digests.multi}` });
});

it("refuses a multi-arch image whose platform manifests are signed but not its index (the index digest is what runs)", async () => {
  const err = await refusal(verify(`${registry.host}/team/multi-platforms-only:1`, [policy()]));
  expect([err.code, err.message.includes(`(${digests["multi-platforms-only"]})`)]).toEqual(["no_signature", true]);
});

it("verifies a reference by digest without resolving a tag", async () => {
  const image = `${registry.host}/team/bundle@${digests.bundle}`;
  expect((await verify(image, [policy()])).pinned).toBe(image);
});

it.each<[string, string, string, RegExp]>([
  ["an unsigned image", "unsigned", "no_signature", /no signature found/],
  ["an image signed by another key", "stranger", "invalid_signature", /no signature verifies with the policy's authorities: sigstore-bundle sha256:[0-9a-f]{12}…: signature does not verify with the policy's key/],
])("refuses %s, naming the image, digest, reason and policy", async (_t, name, code, why) => {
  const err = await refusal(verify(`${registry.host}/team/${name}:1`, [policy()]));
  expect(err.code).toBe(code);
  expect(err.message).toContain(`image ${registry.host}/team/${name}:1 (${digests[name]}): `);
  expect(err.message).toMatch(why);
  expect(err.message).toMatch(/\(KarsImagePolicy team-images\)$/);
});

it("refuses a tag moved to other content after signing: the signature names the old digest", async () => {
  const image = `${registry.host}/team/moved:1`;
  expect((await verify(image, [policy()])).digest).toBe(digests.moved);
  pushImage(image, "content of moved-to", dir); // the same tag, new content (unsigned)
  const err = await refusal(verify(image, [policy()]));
  expect([err.code, err.message.includes(digests.moved)]).toEqual(["no_signature", false]);
});

it("in warn mode admits an image that fails, unpinned, with a warning naming the policy", async () => {
  const image = `${registry.host}/team/unsigned:1`;
  const v = await verify(image, [policy({ mode: "warn" })]);
  expect(v.pinned).toBeUndefined();
  expect(v.warnings).toEqual([`image ${image} (${digests.unsigned}): no signature found (no Sigstore bundle referrer, no .sig tag) (KarsImagePolicy team-images, mode warn)`]);
});

it("does no registry work for an image no policy matches", async () => {
  const nowhere = new RegistryClient({ plainHttp: ["127.0.0.1:1"] });
  const v = await verifyImage("127.0.0.1:1/other/app:1", [policy()], { client: nowhere, now: Date.now });
  expect(v).toEqual({ image: "127.0.0.1:1/other/app:1", digest: "", verifiedBy: [], enforced: false, warnings: [] });
});

it("fails closed with timeout when the registry does not answer within the deadline", async () => {
  const sockets: net.Socket[] = [];
  const silent = net.createServer(s => sockets.push(s)); // accepts, never answers
  await new Promise<void>(r => silent.listen(0, "127.0.0.1", r));
  const host = `127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
  const slow = new RegistryClient({ plainHttp: [host] });
  try {
    const started = Date.now();
    const err = await refusal(verifyImage(`${host}/team/app:1`, [policy({ images: [`${host}/**`] })], { client: slow, now: Date.now, deadlineMs: 300 }));
    expect([err.code, err.message]).toEqual(["timeout", `image ${host}/team/app:1: ${host}: no answer before the verification deadline (KarsImagePolicy team-images)`]);
    expect(Date.now() - started).toBeLessThan(5000);
  } finally {
    for (const s of sockets) s.destroy();
    silent.close();
    await slow.close();
  }
});

it("fails closed with registry_unreachable when nothing listens", async () => {
  const host = `127.0.0.1:${await freePort()}`;
  const gone = new RegistryClient({ plainHttp: [host] });
  const err = await refusal(verifyImage(`${host}/team/app:1`, [policy({ images: [`${host}/**`] })], { client: gone, now: Date.now }));
  expect(err.code).toBe("registry_unreachable");
  expect(err.message).toBe(`image ${host}/team/app:1: ${host}: cannot reach the registry (ECONNREFUSED) (KarsImagePolicy team-images)`);
  await gone.close();
});
