/**
 * The image-verification test tools built by tests/image-verification/build-tools.sh (run by `npm
 * test`'s pretest), a loopback OCI registry to push to, and cosign run so that it can reach nothing
 * but loopback.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { freePort, waitFor } from "../e2e-kind/local/processes";

const SCRIPT = fs.readFileSync(path.join(__dirname, "build-tools.sh"), "utf8");
const CACHE = process.env.KARS_CACHE ?? path.join(os.homedir(), ".cache", "kars");

function pinned(name: string): string {
  const m = new RegExp(`${name}_VERSION="\\$\\{KARS_${name}_VERSION:-([^}]+)\\}"`).exec(SCRIPT);
  if (!m) throw new Error(`build-tools.sh pins no ${name} version`);
  return process.env[`KARS_${name}_VERSION`] ?? m[1];
}

/** Path of the cosign binary (cosign v3, built from its Go module). */
export const COSIGN = path.join(CACHE, "bin", `cosign-${pinned("COSIGN")}`, "cosign");
/** Path of the crane binary (go-containerregistry). */
export const CRANE = path.join(CACHE, "bin", `crane-${pinned("CRANE")}`, "crane");

/**
 * Environment for cosign and crane: every HTTP(S) request not to loopback goes to a closed loopback
 * proxy port (cosign looks for Sigstore's TUF repository; tests never leave the machine), TUF state
 * in `dir`, an empty key password.
 */
export function toolEnv(dir: string): NodeJS.ProcessEnv {
  return { ...process.env, HTTPS_PROXY: "http://127.0.0.1:9", HTTP_PROXY: "http://127.0.0.1:9", NO_PROXY: "127.0.0.1,localhost", TUF_ROOT: path.join(dir, "tuf"), COSIGN_PASSWORD: "", HOME: dir };
}

/** Runs a tool; returns stdout, throws with its stderr when it fails. */
export function run(bin: string, args: string[], dir: string): string {
  const r = spawnSync(bin, args, { cwd: dir, env: toolEnv(dir), encoding: "utf8", timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${path.basename(bin)} ${args.join(" ")} failed (${r.status}): ${r.stderr || r.error?.message}`);
  return r.stdout;
}

export { freePort };

/** `crane registry serve` on 127.0.0.1 (in memory, plain http): its host:port, and a stop. */
export async function startRegistry(dir: string): Promise<{ host: string; child: ChildProcess; stop: () => void }> {
  const port = await freePort();
  const child = spawn(CRANE, ["registry", "serve", "--address", `127.0.0.1:${port}`], { cwd: dir, env: toolEnv(dir), stdio: "ignore" });
  const host = `127.0.0.1:${port}`;
  const listening = () => new Promise<boolean>(resolve => {
    const s = net.connect(port, "127.0.0.1", () => (s.end(), resolve(true))).on("error", () => resolve(false));
  });
  try {
    await waitFor(`crane registry on ${host}`, listening, 20_000);
  } catch (err) {
    child.kill();
    throw err;
  }
  return { host, child, stop: () => child.kill() };
}

/** Pushes a one-file image to `ref` (a tag) with crane; returns its digest. */
export function pushImage(ref: string, content: string, dir: string): string {
  const work = fs.mkdtempSync(path.join(dir, "img-"));
  fs.writeFileSync(path.join(work, "file.txt"), content);
  const tar = spawnSync("tar", ["cf", path.join(work, "layer.tar"), "-C", work, "file.txt"]);
  if (tar.status !== 0) throw new Error(`tar failed: ${tar.stderr}`);
  run(CRANE, ["append", "--insecure", "-f", path.join(work, "layer.tar"), "-t", ref], dir);
  return run(CRANE, ["digest", "--insecure", ref], dir).trim();
}
