import * as fs from "node:fs";
import * as path from "node:path";
import { ROUTER_ESBUILD_ARGS, ROUTER_IMAGE_ENTRYPOINT, ROUTER_IMAGE_ENV, ROUTER_NODE_FLAGS } from "./image-runtime";

const dockerfile = fs.readFileSync(path.join(__dirname, "..", "Dockerfile"), "utf8");
/** Dockerfile instructions with their continuation lines joined. */
const instructions = dockerfile.replace(/\\\n/g, " ").split("\n").map(l => l.replace(/\s+/g, " ").trim());

describe("router/Dockerfile agrees with image-runtime.ts (what bench:router runs)", () => {
  it("bundles with ROUTER_ESBUILD_ARGS", () => {
    const build = instructions.find(l => l.startsWith("RUN ") && l.includes("esbuild router/src/main.ts"));
    expect(build).toBeDefined();
    const args = (build as string).split(" ").filter(a => a.startsWith("--") && !a.startsWith("--outfile"));
    expect(args).toEqual([...ROUTER_ESBUILD_ARGS]);
  });
  it("runs ROUTER_IMAGE_ENTRYPOINT", () => {
    const entry = instructions.find(l => l.startsWith("ENTRYPOINT "));
    expect(JSON.parse((entry as string).slice("ENTRYPOINT ".length))).toEqual([...ROUTER_IMAGE_ENTRYPOINT]);
  });
  it("sets ROUTER_IMAGE_ENV", () => {
    const env = Object.fromEntries(
      instructions
        .filter(l => l.startsWith("ENV "))
        .flatMap(l => l.slice("ENV ".length).split(" "))
        .map(kv => kv.split("=", 2)),
    );
    expect(env).toEqual({ ...ROUTER_IMAGE_ENV });
  });
  it("smoke-tests the bundle with the same node flags", () => {
    const smoke = instructions.find(l => l.startsWith("RUN node ") && l.includes("/out/router.js --help"));
    expect(smoke).toContain(`node ${ROUTER_NODE_FLAGS.join(" ")} /out/router.js --help`.replace(/\s+/g, " "));
  });
});
