/**
 * `npm run bench:image-verify` (DESIGN §8): cosign-on-admission's verification of one image
 * (capabilities/image-verification verifyImage: tag → digest, signature discovery, key check), against a
 * loopback registry (`crane registry serve`) holding images that cosign v3 signed (Sigstore bundles and
 * legacy .sig tags, alternating). Ends with one `BENCH image-verify …` line per target:
 *   warm cache p99 < 1 ms (the webhook's verdict and tag caches hold the image);
 *   cold p99 < 100 ms (fresh caches: every read goes to the registry over loopback), beside the peer,
 *   the cosign CLI verifying the same images with the same key (`cosign verify --key`, one process each:
 *   what a shell-out verifier pays), and the baseline of one manifest GET round trip to that registry.
 * Environment: BENCH_IMAGES (signed images, default 12), BENCH_COLD (cold verifications, default 600),
 * BENCH_WARM (warm verifications, default 20000), BENCH_COSIGN_RUNS (default 12).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parsePublicKey } from "../../capabilities/image-verification/verify-key";
import type { ImagePolicy } from "../../capabilities/image-verification/policy-match";
import { RegistryClient } from "../../capabilities/image-verification/registry-client";
import { createVerificationCaches, verifyImage } from "../../capabilities/image-verification/verify-image";
import { COSIGN, pushImage, run, startRegistry } from "../../tests/image-verification/tools";
import { quantile } from "../router/measure";

const IMAGES = Number(process.env.BENCH_IMAGES ?? 12);
const COLD = Number(process.env.BENCH_COLD ?? 600);
const WARM = Number(process.env.BENCH_WARM ?? 20_000);
const COSIGN_RUNS = Number(process.env.BENCH_COSIGN_RUNS ?? 12);
const ROOT = path.resolve(__dirname, "../..");

function log(msg: string): void {
  process.stderr.write(`bench:image-verify ${msg}\n`);
}

function fmt(n: number): string {
  return Number.isFinite(n) ? (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n >= 0.1 ? n.toFixed(2) : n.toFixed(3)) : "n/a";
}

async function main(): Promise<void> {
  const tools = spawnSync("bash", [path.join(ROOT, "tests/image-verification/build-tools.sh")], { stdio: "inherit" });
  if (tools.status !== 0) throw new Error("building cosign and crane failed");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kars-bench-image-verify-"));
  const registry = await startRegistry(dir);
  try {
    run(COSIGN, ["generate-key-pair"], dir);
    run(COSIGN, ["signing-config", "create", "--out", path.join(dir, "signing-config.json")], dir);
    const key = parsePublicKey(fs.readFileSync(path.join(dir, "cosign.pub"), "utf8"));
    log(`pushing and signing ${IMAGES} images in ${registry.host}`);
    const images: string[] = [];
    for (let i = 0; i < IMAGES; i++) {
      const image = `${registry.host}/bench/app-${i}:1`;
      const digest = pushImage(image, `content ${i}`, dir);
      const format = i % 2 === 0 ? ["--signing-config", path.join(dir, "signing-config.json")] : ["--new-bundle-format=false", "--use-signing-config=false", "--tlog-upload=false"];
      run(COSIGN, ["sign", "--key", path.join(dir, "cosign.key"), "--allow-insecure-registry", "-y", ...format, `${registry.host}/bench/app-${i}@${digest}`], dir);
      images.push(image);
    }
    const policies: ImagePolicy[] = [{ name: "bench", generation: 1, images: [`${registry.host}/bench/**`], authorities: [{ name: "bench-key", key }], mode: "enforce" }];
    const client = new RegistryClient({ plainHttp: [registry.host] });
    const time = async (f: () => Promise<unknown>): Promise<number> => {
      const t = process.hrtime.bigint();
      await f();
      return Number(process.hrtime.bigint() - t) / 1e6;
    };

    // warm-up (JIT, connections), then each phase
    for (let i = 0; i < 200; i++) await verifyImage(images[i % IMAGES], policies, { client, now: Date.now, caches: createVerificationCaches() });
    log(`cold: ${COLD} verifications with fresh caches`);
    const cold: number[] = [];
    for (let i = 0; i < COLD; i++) cold.push(await time(() => verifyImage(images[i % IMAGES], policies, { client, now: Date.now, caches: createVerificationCaches() })));
    log(`warm: ${WARM} verifications with the webhook's caches`);
    const caches = createVerificationCaches();
    for (const image of images) await verifyImage(image, policies, { client, now: Date.now, caches });
    const warm: number[] = [];
    for (let i = 0; i < WARM; i++) warm.push(await time(() => verifyImage(images[i % IMAGES], policies, { client, now: Date.now, caches })));
    log("baseline: one manifest GET round trip");
    const roundTrips: number[] = [];
    for (let i = 0; i < COLD; i++) roundTrips.push(await time(() => client.manifest(registry.host, `bench/app-${i % IMAGES}`, "1", AbortSignal.timeout(5000))));
    log(`peer: cosign verify --key, ${COSIGN_RUNS} runs`);
    const cosign: number[] = [];
    for (let i = 0; i < COSIGN_RUNS; i++) {
      const t = process.hrtime.bigint();
      run(COSIGN, ["verify", "--key", path.join(dir, "cosign.pub"), "--allow-insecure-registry", "--insecure-ignore-tlog=true", "--insecure-ignore-sct=true", images[i % IMAGES]], dir);
      cosign.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    await client.close();

    const w99 = quantile(warm, 0.99);
    const c99 = quantile(cold, 0.99);
    const k99 = quantile(cosign, 0.99);
    const verdict = (ok: boolean) => (ok ? "pass" : "fail");
    console.log(`BENCH image-verify warm_p99_ms=${fmt(w99)} warm_p50_ms=${fmt(quantile(warm, 0.5))} cold_p99_ms=${fmt(c99)} ratio=${fmt(c99 / w99)} target<1 ${verdict(w99 < 1)}`);
    console.log(`BENCH image-verify cold_p99_ms=${fmt(c99)} cold_p50_ms=${fmt(quantile(cold, 0.5))} cosign_cli_p99_ms=${fmt(k99)} cosign_cli_p50_ms=${fmt(quantile(cosign, 0.5))} ratio=${fmt(k99 / c99)} target<100 ${verdict(c99 < 100)}`);
    console.log(`BENCH image-verify registry_roundtrip_p50_ms=${fmt(quantile(roundTrips, 0.5))} registry_roundtrip_p99_ms=${fmt(quantile(roundTrips, 0.99))} images=${IMAGES} (information: one manifest GET to the loopback registry; a cold verification makes 4-6 reads)`);
  } finally {
    registry.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  err => {
    console.error(`bench:image-verify failed: ${(err as Error).stack ?? err}`);
    process.exit(1);
  },
);
