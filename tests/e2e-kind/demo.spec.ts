/**
 * The main job as a user runs it (DESIGN §0, README): `npm run demo -- --keep` shows sandboxes, the
 * admitted pod and a refused pod, prints KUBECONFIG=<path> once ready, and stops everything when npm
 * gets SIGTERM (npm passes it to its script's shell: the script `exec`s kars, so kars receives it).
 * (Local provider only: against kind or a kubeconfig the demo shares the cluster under test.)
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { e2e, eventually } from "./helpers";
import { binaries } from "./local/control-plane";

const { stack } = e2e();
const local = stack.cluster.provider === "local";
const repo = join(__dirname, "..", "..");

(local ? describe : describe.skip)("kars demo --keep", () => {
  it("shows what a user wants to see, stays up with a working KUBECONFIG, and leaves nothing running after SIGTERM to npm", async () => {
    const env = { ...process.env };
    delete env.KUBECONFIG;
    const child = spawn("npm", ["run", "demo", "--", "--keep"], { cwd: repo, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>(r => child.on("exit", code => r(code)));

    const kubeconfig = await eventually("KUBECONFIG= line", () => /^KUBECONFIG=(.+)$/m.exec(out)?.[1], 150_000);
    expect(out).toMatch(/research-agent\s+OpenAIAgents\s+Ready\s+True/);
    expect(out).toMatch(/byo-agent\s+BYO\s+Ready\s+True/);
    expect(out).toContain("- name: egress-guard");
    expect(out).toContain("- name: inference-router");
    expect(out).toContain('admission webhook "pods.sandbox.validate.kars.azure.com" denied the request: spec.containers[0].securityContext.privileged: must be false (kars sandbox posture)');

    expect(out).toMatch(/^LISTEN api 127\.0\.0\.1:\d+$/m);
    expect(out).toContain('agent (openai SDK) → router → model: "Hello!"');
    expect(out).toMatch(/budget sandbox:research-agent: hourly \d+ used, \d+ left/);
    // The example InferencePolicy's tenant budget (80,000 an hour) split between the two example sandboxes.
    expect(out).toContain('tenantTokenBudget (this sandbox\'s share of the tenant budget): {"hourlyTokens":40000,"dailyTokens":150000,"monthlyTokens":1500000}');
    expect(out).toMatch(/budget tenant:kars-system: hourly (\d+) used, (\d+) left/);
    const [, used, left] = /budget tenant:kars-system: hourly (\d+) used, (\d+) left/.exec(out)!;
    expect(Number(used) + Number(left)).toBe(40_000);
    const get = spawnSync(binaries().kubectl, ["--kubeconfig", kubeconfig, "get", "karssandboxes", "-A"], { encoding: "utf8" });
    expect(get.stdout).toContain("research-agent");

    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(out).toContain("kars demo: stopped everything it started");
    const dir = kubeconfig.replace(/\/kubeconfig$/, "");
    expect(existsSync(dir)).toBe(false);
    expect(spawnSync("pgrep", ["-f", dir]).status).toBe(1);
  });
});
