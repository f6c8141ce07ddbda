/**
 * The router as its image ships it (router/Dockerfile), without Docker: the same esbuild bundle
 * (ROUTER_ESBUILD_ARGS), the Dockerfile's own smoke-test line run against it, and the bundle serving a
 * chat call with a Workload Identity token on the image's node flags and environment. The other
 * router specs run `kars router` through tsx, where @azure/identity is loaded from node_modules; here
 * it must come from the bundle.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import OpenAI from "openai";
import { ROUTER_ESBUILD_ARGS } from "../../router/src/image-runtime";
import { startFakeTokenEndpoint, type FakeTokenEndpoint, workloadIdentityEnv } from "./router-support/fake-token-endpoint";
import { startFakeUpstream, type FakeUpstream } from "./router-support/fake-upstream";
import { startRouterProcess, type RouterProcess } from "./router-support/router-process";

jest.setTimeout(120_000);

const ROOT = path.resolve(__dirname, "../..");
const TENANT_ID = "00000000-0000-0000-0000-00000000bbbb";
const CLIENT_ID = "22222222-2222-2222-2222-222222222222";
const FEDERATED_TOKEN = "federated-sa-token-of-the-bundled-router";

let dir: string;
let bundle: string;
let upstream: FakeUpstream | undefined;
let entra: FakeTokenEndpoint | undefined;
let router: RouterProcess | undefined;

/** The Dockerfile's instructions, continuation lines joined. */
function dockerfileInstructions(): string[] {
  const text = fs.readFileSync(path.join(ROOT, "router/Dockerfile"), "utf8");
  return text.replace(/\\\n/g, " ").split("\n").map(l => l.replace(/\s+/g, " ").trim());
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "kars-router-image-"));
  bundle = path.join(dir, "out", "router.js");
  const esbuild = spawnSync(path.join(ROOT, "node_modules/.bin/esbuild"), [path.join(ROOT, "router/src/main.ts"), ...ROUTER_ESBUILD_ARGS, `--outfile=${bundle}`, "--log-level=error"], { encoding: "utf8" });
  if (esbuild.status !== 0) throw new Error(`esbuild failed: ${esbuild.stderr}`);
});

afterAll(async () => {
  await router?.kill9().catch(() => undefined);
  await upstream?.close();
  await entra?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

it("passes the Dockerfile's smoke test (the RUN line after the bundle is built, as docker build runs it)", () => {
  const smoke = dockerfileInstructions().filter(l => l.startsWith("RUN node ") && l.includes("/out/router.js") && !l.includes("esbuild"));
  expect(smoke).toHaveLength(1);
  // the build stage's `node` is the pinned Node 24 here; /out is where the bundle was written
  const command = smoke[0].slice("RUN ".length).replace(/^node /, `"${process.execPath}" `).replaceAll("/out/", `${path.dirname(bundle)}/`);
  const run = spawnSync("/bin/sh", ["-c", command], { encoding: "utf8", env: { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH}` } });
  expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: "" });
});

it("serves a chat call with a Workload Identity token from the bundle alone, and stops cleanly", async () => {
  const configDir = path.join(dir, "etc-kars");
  fs.mkdirSync(configDir);
  upstream = await startFakeUpstream();
  entra = await startFakeTokenEndpoint(dir, TENANT_ID);
  fs.writeFileSync(path.join(dir, "federated-token"), FEDERATED_TOKEN);
  fs.writeFileSync(
    path.join(configDir, "profile.json"),
    JSON.stringify({
      sandbox: "image", tenant: "team-i", egressMode: "Strict", allowedEndpoints: [],
      inferencePolicy: { tokenBudget: { perRequestTokens: 4000, dailyTokens: 100000 } },
      upstreams: [{ name: "gpt-4o", provider: "azure-openai", endpoint: upstream.url, deployment: "gpt4o-prod", apiVersion: "2024-10-21" }],
      listen: { api: "127.0.0.1:0", egress: "127.0.0.1:0", ops: "127.0.0.1:0" },
    }),
  );
  // the bundle's directory holds nothing else: no node_modules for it to fall back on
  expect(fs.readdirSync(path.dirname(bundle))).toEqual(["router.js"]);
  router = await startRouterProcess(configDir, path.join(dir, "state"), {
    ...workloadIdentityEnv(entra, TENANT_ID, CLIENT_ID, path.join(dir, "federated-token")),
  }, { bundle });
  const client = new OpenAI({ baseURL: `http://${router.listen.api}/v1`, apiKey: "agent-has-no-real-key", maxRetries: 0 });
  const answer = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hello" }] });
  expect(answer.choices[0].message.content).toBe("Hello!");
  const seen = upstream.received.at(-1);
  expect(seen?.headers.authorization).toBe(`Bearer ${entra.accessToken}`);
  expect(entra.assertions).toContain(FEDERATED_TOKEN);
  const logs = await router.settledLogs();
  expect(logs).not.toContain(entra.accessToken);
  expect(logs).not.toContain(FEDERATED_TOKEN);
  expect(await router.stop()).toBe(0);
});
