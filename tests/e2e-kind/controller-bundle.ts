/**
 * The kars controller as one bundle on Node 24 (what an in-cluster controller image runs), for the
 * benchmarks: the e2e specs and the demo run `pepr.ts` under tsx instead (stack.ts startController).
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";

const repo = join(__dirname, "..", "..");

/**
 * esbuild arguments of the bundle (besides the entry point and `--outfile`). `--keep-names`: Pepr
 * finds a binding's kind by its model class's name (`V1Namespace`), which bundling would otherwise
 * rename on a clash (`_V1Namespace`: "Kind not specified"). `--minify-whitespace` drops comments, some
 * of them not ASCII, which made V8 keep the ~19 MB source as a two-byte string (37 MiB of heap).
 */
export const CONTROLLER_ESBUILD_ARGS: readonly string[] = ["--bundle", "--platform=node", "--target=node24", "--format=cjs", "--keep-names", "--legal-comments=none", "--minify-whitespace"];

/**
 * Node/V8 flags the bundle runs with. `--max-old-space-size=224` (MiB): V8 otherwise sizes the old
 * generation from the machine's memory and lets garbage from watch events and API answers float
 * (bench:reconcile: 504 MiB of RSS at 1,000 sandboxes with a 1 GiB limit). The live set is the
 * watch caches (every watched KarsSandbox and child, once per Pepr binding); at 1,000 sandboxes a
 * 192 MiB limit made the controller collect garbage half the time (138 s to Ready instead of 97 s),
 * 224 MiB did not (peak RSS 295 MiB).
 */
export const CONTROLLER_NODE_FLAGS: readonly string[] = ["--max-old-space-size=224"];

/** Builds the bundle of pepr.ts at `outfile`. Throws with esbuild's message when it fails. */
export function buildControllerBundle(outfile: string): void {
  const r = spawnSync(join(repo, "node_modules", ".bin", "esbuild"), [join(repo, "pepr.ts"), ...CONTROLLER_ESBUILD_ARGS, `--outfile=${outfile}`, "--log-level=error"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`esbuild of the controller failed: ${r.stderr || r.error?.message}`);
}
