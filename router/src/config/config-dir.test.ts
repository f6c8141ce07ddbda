import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { evaluateAction } from "../policy/policy-engine";
import { ConfigDirectory } from "./config-dir";

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
const profile = (sandbox: string) =>
  JSON.stringify({
    sandbox,
    tenant: "t",
    egressMode: "Strict",
    allowedEndpoints: [],
    inferencePolicy: {},
    upstreams: [{ name: "m", provider: "openai-compatible", endpoint: "http://127.0.0.1:1/v1", apiKeyFile: "secrets/key" }],
  });

describe("ConfigDirectory", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kars-config-"));
    fs.mkdirSync(path.join(dir, "secrets"));
    fs.writeFileSync(path.join(dir, "secrets/key"), "sk-test\n");
    fs.writeFileSync(path.join(dir, "profile.json"), profile("one"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("loads the profile, the API key files and the ops token", () => {
    fs.writeFileSync(path.join(dir, "ops-token"), "tok\n");
    const c = new ConfigDirectory(dir, silent);
    expect([c.config().profile.sandbox, c.apiKey(c.config().profile.upstreams[0]), c.opsBearerToken(), c.readiness()]).toEqual(["one", "sk-test", "tok", { ready: true, reasons: [] }]);
  });

  it("never gives an upstream's new key for the spec a request was admitted with, once a reload moved it (helper-21)", () => {
    const c = new ConfigDirectory(dir, silent);
    const admitted = c.config().profile.upstreams[0];
    fs.writeFileSync(path.join(dir, "secrets/other"), "sk-for-elsewhere\n");
    const moved = { ...JSON.parse(profile("one")), upstreams: [{ name: "m", provider: "openai-compatible", endpoint: "http://127.0.0.2:1/v1", apiKeyFile: "secrets/other" }] };
    fs.writeFileSync(path.join(dir, "profile.json"), JSON.stringify(moved));
    c.reload();
    expect(c.apiKey(admitted)).toBeUndefined();
    expect(c.apiKey(c.config().profile.upstreams[0])).toBe("sk-for-elsewhere");
    // the same key file at another endpoint is another spec too
    fs.writeFileSync(path.join(dir, "profile.json"), JSON.stringify({ ...moved, upstreams: [{ ...moved.upstreams[0], apiKeyFile: "secrets/key" }] }));
    c.reload();
    expect([c.apiKey(admitted), c.apiKey(c.config().profile.upstreams[0])]).toEqual([undefined, "sk-test"]);
  });

  it("starts, ready, on a profile with no upstream, and warns that inference is refused", () => {
    fs.writeFileSync(path.join(dir, "profile.json"), JSON.stringify({ ...JSON.parse(profile("one")), upstreams: [] }));
    const warned: string[] = [];
    const warn = (...args: unknown[]) => void warned.push(String(args[1]));
    const c = new ConfigDirectory(dir, { ...silent, warn });
    expect([c.config().profile.upstreams, c.readiness().ready]).toEqual([[], true]);
    expect(warned).toEqual([expect.stringMatching(/names no model upstream.*503 upstream_unavailable/)]);
  });

  it("refuses to start without a profile", () => {
    fs.rmSync(path.join(dir, "profile.json"));
    expect(() => new ConfigDirectory(dir, silent)).toThrow(/profile\.json: missing/);
  });

  it("a bad new profile keeps the last good one and says why; a good one makes it ready again", () => {
    const c = new ConfigDirectory(dir, silent);
    const digest = c.config().profileDigest;
    fs.writeFileSync(path.join(dir, "profile.json"), '{"sandbox": 3}');
    c.reload();
    expect(c.config().profileDigest).toBe(digest);
    expect(c.readiness().ready).toBe(false);
    expect(c.readiness().reasons[0]).toMatch(/^profile\.json: profile\.json is invalid: .*sandbox: must be string/);
    fs.writeFileSync(path.join(dir, "profile.json"), profile("two"));
    expect(c.reload()).toBe(true);
    expect([c.config().profile.sandbox, c.readiness().ready]).toEqual(["two", true]);
  });

  it("reverting a bad edit to the exact version in use makes it ready again", () => {
    const c = new ConfigDirectory(dir, silent);
    const good = fs.readFileSync(path.join(dir, "profile.json"), "utf8");
    fs.writeFileSync(path.join(dir, "profile.json"), "{");
    c.reload();
    expect(c.readiness().ready).toBe(false);
    fs.writeFileSync(path.join(dir, "profile.json"), good);
    c.reload();
    expect(c.readiness()).toEqual({ ready: true, reasons: [] });
  });

  it("a bad toolpolicy.yaml marks not ready; a good one is applied", () => {
    const c = new ConfigDirectory(dir, silent);
    fs.writeFileSync(path.join(dir, "toolpolicy.yaml"), "policies: 1\n");
    c.reload();
    expect(c.readiness().reasons).toEqual(["toolpolicy.yaml: toolpolicy.yaml: (root): must have required property 'version'; policies: must be array"]);
    fs.writeFileSync(path.join(dir, "toolpolicy.yaml"), "version: '1'\npolicies: []\n");
    c.reload();
    expect([c.config().toolPolicy?.version, c.readiness().ready]).toEqual(["1", true]);
  });

  it("starting on a bad toolpolicy.yaml denies every action until a good one parses (fail closed: no last good version to keep)", () => {
    fs.writeFileSync(path.join(dir, "toolpolicy.yaml"), "version: 1\npolicies: [{name: a, type: capability, denied_action: ['shell:*']}]\n");
    const c = new ConfigDirectory(dir, silent);
    expect(c.readiness().ready).toBe(false);
    const denied = evaluateAction(c.config().toolPolicy, "inference:chat_completions:gpt-4o", 0, new Map());
    expect(denied).toMatchObject({ allowed: false, reason: "denied by no valid toolpolicy.yaml yet (the router's /readyz says why)" });
    expect(c.readiness().reasons).toEqual([expect.stringMatching(/^toolpolicy\.yaml: .*denied_action/)]);
    fs.writeFileSync(path.join(dir, "toolpolicy.yaml"), "version: '2'\npolicies: [{name: a, type: capability, denied_actions: ['shell:*']}]\n");
    c.reload();
    expect([c.config().toolPolicy?.version, c.readiness().ready, evaluateAction(c.config().toolPolicy, "inference:chat_completions:gpt-4o", 0, new Map()).allowed]).toEqual(["2", true, true]);
    // a later bad version keeps that good one
    fs.writeFileSync(path.join(dir, "toolpolicy.yaml"), "version: [\n");
    c.reload();
    expect([c.config().toolPolicy?.version, c.readiness().ready]).toEqual(["2", false]);
  });

  it("a toolpolicy.yaml that turns into a directory keeps the last good policy, says why, and the other files are still re-read (helper-21)", () => {
    fs.writeFileSync(path.join(dir, "toolpolicy.yaml"), "version: '1'\npolicies: [{name: a, type: capability, denied_actions: ['shell:*']}]\n");
    fs.writeFileSync(path.join(dir, "ops-token"), "old\n");
    const c = new ConfigDirectory(dir, silent);
    fs.rmSync(path.join(dir, "toolpolicy.yaml"));
    fs.mkdirSync(path.join(dir, "toolpolicy.yaml"));
    fs.writeFileSync(path.join(dir, "ops-token"), "rotated\n");
    c.reload();
    expect([c.config().toolPolicy?.version, c.opsBearerToken(), c.readiness()]).toEqual(["1", "rotated", { ready: false, reasons: ["toolpolicy.yaml: unreadable (EISDIR); keeping the last good version"] }]);
  });

  it.each([
    ["a directory", (file: string) => fs.mkdirSync(file)],
    ["a dangling symlink (not the same as no file)", (file: string) => fs.symlinkSync(path.join(dir, "nowhere.yaml"), file)],
  ])("starting on a toolpolicy.yaml that is %s denies every action", (_title, make) => {
    make(path.join(dir, "toolpolicy.yaml"));
    const c = new ConfigDirectory(dir, silent);
    expect(evaluateAction(c.config().toolPolicy, "inference:chat_completions:m", 0, new Map()).allowed).toBe(false);
    expect(c.readiness().ready).toBe(false);
  });

  it("an ops-token that cannot be read disables the internal endpoints (fail closed) and says why", () => {
    fs.writeFileSync(path.join(dir, "ops-token"), "tok\n");
    const c = new ConfigDirectory(dir, silent);
    fs.rmSync(path.join(dir, "ops-token"));
    fs.mkdirSync(path.join(dir, "ops-token"));
    c.reload();
    expect([c.opsBearerToken(), c.readiness().reasons]).toEqual([null, ["ops-token: unreadable (EISDIR); internal endpoints disabled"]]);
  });

  it("an unreadable API key file marks not ready without naming its content", () => {
    fs.rmSync(path.join(dir, "secrets/key"));
    const c = new ConfigDirectory(dir, silent);
    expect(c.readiness()).toEqual({ ready: false, reasons: ["upstreams[m].apiKeyFile secrets/key: unreadable (ENOENT)"] });
  });
});
