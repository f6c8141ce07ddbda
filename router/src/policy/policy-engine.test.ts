import { evaluateAction, parsePolicyProfile } from "./policy-engine";

const yaml = `
version: "1.0"
agent: demo
policies:
  - name: low-allow-all
    type: capability
    allowed_actions: ["*"]
    priority: 1
  - name: no-big-model
    type: capability
    denied_actions: ["inference:chat_completions:gpt-5*"]
    priority: 100
  - name: shell-approval
    type: approval
    actions: ["shell:*"]
    priority: 50
  - name: fetch-limit
    type: rate_limit
    actions: ["fetch:*"]
    max_calls: 2
    window: 60
    priority: 40
`;

describe("evaluateAction", () => {
  const profile = parsePolicyProfile(yaml);
  it.each<[string, string, boolean, string | null]>([
    ["the highest priority match wins over a broad allow", "inference:chat_completions:gpt-5-large", false, "no-big-model"],
    ["a broad low-priority allow admits other models", "inference:chat_completions:gpt-4o", true, "low-allow-all"],
    ["an approval rule denies on the inference path", "shell:rm", false, "shell-approval"],
  ])("%s", (_t, action, allowed, rule) => {
    const d = evaluateAction(profile, action, 0, new Map());
    expect([d.allowed, d.rule]).toEqual([allowed, rule]);
  });

  it("a rate_limit rule allows max_calls per window", () => {
    const calls = new Map<string, number[]>();
    const results = [0, 1, 2].map(() => evaluateAction(profile, "fetch:example.com", 1000, calls).allowed);
    expect(results).toEqual([true, true, false]);
    expect(evaluateAction(profile, "fetch:example.com", 62_000, calls).allowed).toBe(true);
  });

  it("no profile allows", () => {
    expect(evaluateAction(null, "x", 0, new Map()).allowed).toBe(true);
  });

  it.each([
    ["policies: 3", /version: required/],
    ["version: 1\npolicies: [{name: a, type: weird}]", /policies\[0\]\.type/],
  ])("rejects %p", (text, err) => {
    expect(() => parsePolicyProfile(text)).toThrow(err);
  });
});
