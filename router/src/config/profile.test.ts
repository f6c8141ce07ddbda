import { parseProfile, ProfileError } from "./profile";

const base = {
  sandbox: "demo",
  tenant: "team-a",
  egressMode: "Strict",
  allowedEndpoints: [{ host: "api.github.com", port: 443 }],
  inferencePolicy: {
    tokenBudget: { perRequestTokens: 1000, hourlyTokens: 10000, dailyTokens: 20000, monthlyTokens: 100000 },
    contentSafety: { hate: "Low", selfHarm: "Safe", sexual: "Low", violence: "Medium", requirePromptShields: true },
    modelPreference: { primary: "gpt-4o", fallback: ["gpt-4o-mini"] },
  },
  upstreams: [
    { name: "gpt-4o", provider: "azure-openai", endpoint: "https://x.openai.azure.com", deployment: "gpt4o", apiVersion: "2024-10-21" },
    { name: "gpt-4o-mini", provider: "openai-compatible", endpoint: "http://127.0.0.1:1/v1", apiKeyFile: "key" },
  ],
  listen: { api: "127.0.0.1:0", egress: "127.0.0.1:0", ops: ":0" },
};

function problemsOf(patch: (p: Record<string, unknown>) => void): string[] {
  const p = structuredClone(base) as Record<string, unknown>;
  patch(p);
  try {
    parseProfile(JSON.stringify(p));
  } catch (err) {
    if (err instanceof ProfileError) return err.problems;
    throw err;
  }
  return [];
}

describe("parseProfile", () => {
  it("accepts the DESIGN §6 shape and returns a frozen profile with a sha256 digest", () => {
    const loaded = parseProfile(JSON.stringify(base));
    expect(loaded.profile.sandbox).toBe("demo");
    expect(loaded.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(Object.isFrozen(loaded.profile.inferencePolicy)).toBe(true);
  });

  it.each<[string, (p: Record<string, unknown>) => void, RegExp]>([
    ["a missing sandbox is named", p => delete p.sandbox, /^\(root\): must have required property 'sandbox'/],
    ["an unknown egressMode lists the allowed ones", p => (p.egressMode = "Open"), /^egressMode: .*Strict, Learn/],
    ["an unknown top-level key is named", p => (p.egresMode = "Strict"), /\(egresMode\)/],
    ["a bad provider is located by index", p => ((p.upstreams as { provider: string }[])[1].provider = "x"), /^upstreams\[1\]\.provider/],
    ["a bad severity is located", p => ((p.inferencePolicy as { contentSafety: { hate: string } }).contentSafety.hate = "Extreme"), /^inferencePolicy\.contentSafety\.hate/],
    ["a model preference must name an upstream", p => ((p.inferencePolicy as { modelPreference: { primary: string } }).modelPreference.primary = "nope"), /^inferencePolicy\.modelPreference\.primary: names no upstream/],
    ["monthly must be at least daily", p => ((p.inferencePolicy as { tokenBudget: { monthlyTokens: number } }).tokenBudget.monthlyTokens = 1), /monthlyTokens: must be >= dailyTokens/],
    ["an API-key provider needs apiKeyFile", p => delete (p.upstreams as { apiKeyFile?: string }[])[1].apiKeyFile, /^upstreams\[1\]\.apiKeyFile: required/],
    ["a listen address needs a port", p => (p.listen = { api: "127.0.0.1" }), /^listen\.api/],
    ["Azure OpenAI needs https off this machine (its Entra token would cross the network in clear)", p => ((p.upstreams as { endpoint: string }[])[0].endpoint = "http://x.openai.azure.com"), /^upstreams\[0\]\.endpoint: provider azure-openai sends Entra tokens or api-keys, so it needs https:\/\//],
  ])("%s", (_title, patch, expected) => {
    expect(problemsOf(patch).some(p => expected.test(p))).toBe(true);
  });

  it.each(["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9"])("accepts Azure OpenAI over plain http to loopback %s (tests)", endpoint => {
    expect(problemsOf(p => ((p.upstreams as { endpoint: string }[])[0].endpoint = endpoint))).toEqual([]);
  });

  it("accepts no upstreams at all, with the InferencePolicy's model preference left unchecked (inference is refused)", () => {
    expect(problemsOf(p => (p.upstreams = []))).toEqual([]);
  });

  it("rejects text that is not JSON", () => {
    expect(() => parseProfile("{")).toThrow(/not JSON/);
  });
});
