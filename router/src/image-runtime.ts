/**
 * How the router image builds and runs the router (router/Dockerfile), in one place that the benchmark
 * (bench/router/run.ts) also uses, so `npm run bench:router` measures what ships.
 * image-runtime.test.ts checks that router/Dockerfile says the same.
 */

/**
 * esbuild arguments of the image's bundle (besides the entry point and `--outfile`). Whitespace
 * minification drops comments: some bundled comments are not ASCII, which would make V8 keep the whole
 * ~4 MiB source as a two-byte string (~9 MiB of heap); identifiers and names are kept as written.
 */
export const ROUTER_ESBUILD_ARGS: readonly string[] = ["--bundle", "--platform=node", "--target=node24", "--format=cjs", "--legal-comments=none", "--minify-whitespace"];

/**
 * Node/V8 flags of the image's ENTRYPOINT (before the script), which keep RSS under load within
 * DESIGN §8's 128 MiB (measured by bench:router; the heap is a quarter of it, the node binary's pages
 * and malloc the rest):
 * - `--max-semi-space-size=2`: a 2 MiB young-generation semi-space (V8 grows it to 16 MiB under load);
 *   the router's per-request garbage is small and short-lived, so scavenges stay cheap (~0.4 ms).
 * - `--heap-growing-percent=50`: after a full GC the old generation may grow by half its live size
 *   before the next one (V8's default factor is up to 4×, which let ~15 MiB of live data float to
 *   ~50 MiB of old space under load, as objects of in-flight requests get promoted).
 * The old generation keeps V8's default maximum: large request and response bodies must still fit.
 */
export const ROUTER_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=2", "--heap-growing-percent=50"];

/** The image's ENTRYPOINT (distroless Node 24 at /nodejs/bin/node, the bundle at /app/router.js). */
export const ROUTER_IMAGE_ENTRYPOINT: readonly string[] = ["/nodejs/bin/node", ...ROUTER_NODE_FLAGS, "/app/router.js"];

/**
 * The image's environment (its `ENV`): the router logs at info, one line per inference decision, and
 * the benchmark measures that too. `MALLOC_ARENA_MAX=2` (glibc; the distroless image is Debian's) stops
 * each V8 and libuv thread from growing its own malloc arena: a few MiB less RSS under load, and less
 * spread between runs (bench:router peaks of 113-127 MiB instead of 117-140).
 */
export const ROUTER_IMAGE_ENV: Readonly<Record<string, string>> = { NODE_ENV: "production", KARS_LOG_LEVEL: "info", MALLOC_ARENA_MAX: "2" };
