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

  it.each<[string, string, RegExp]>([
    ["no version, policies not a list", "policies: 3", /\(root\): must have required property 'version'; policies: must be array/],
    ["an unknown rule type, listing the allowed ones", "version: 1\npolicies: [{name: a, type: weird, actions: [x]}]", /policies\[0\]\.type: must be equal to one of the allowed values \(capability, approval, rate_limit\)/],
    ["a misspelt field (it would deny nothing)", "version: 1\npolicies: [{name: a, type: capability, denied_action: ['shell:*']}]", /policies\[0\]: must NOT have additional properties \(denied_action\)/],
    ["a capability rule with neither list", "version: 1\npolicies: [{name: a, type: capability, priority: 5}]", /^toolpolicy\.yaml: policies\[0\]: a capability rule needs allowed_actions or denied_actions$/],
    ["a rate_limit without max_calls (it would limit nothing)", "version: 1\npolicies: [{name: a, type: rate_limit, actions: ['fetch:*']}]", /policies\[0\]: must have required property 'max_calls'/],
    ["max_calls as a string", "version: 1\npolicies: [{name: a, type: rate_limit, actions: ['fetch:*'], max_calls: '5'}]", /policies\[0\]\.max_calls: must be integer/],
    ["a window of 0 s", "version: 1\npolicies: [{name: a, type: rate_limit, actions: ['fetch:*'], max_calls: 5, window: 0}]", /policies\[0\]\.window: must be > 0/],
    ["priority as a string", "version: 1\npolicies: [{name: a, type: capability, allowed_actions: ['*'], priority: '10'}]", /policies\[0\]\.priority: must be number/],
    ["an approval rule without actions", "version: 1\npolicies: [{name: a, type: approval}]", /policies\[0\]: must have required property 'actions'/],
    ["another type's field on a capability rule", "version: 1\npolicies: [{name: a, type: capability, denied_actions: ['x'], max_calls: 3}]", /policies\[0\]: has a field its type does not take \(capability: allowed_actions and\/or denied_actions; approval: actions; rate_limit: actions, max_calls, window\)/],
    ["an empty action list", "version: 1\npolicies: [{name: a, type: capability, denied_actions: []}]", /policies\[0\]\.denied_actions: must NOT have fewer than 1 items/],
    ["an empty action", "version: 1\npolicies: [{name: a, type: capability, denied_actions: ['']}]", /policies\[0\]\.denied_actions\[0\]: must NOT have fewer than 1 characters/],
    ["two rules of one name (they would share call counts)", "version: 1\npolicies: [{name: a, type: capability, denied_actions: [x]}, {name: a, type: capability, allowed_actions: [y]}]", /policies\[1\]\.name: duplicate rule name "a"/],
    ["text that is not YAML", "version: [1\n", /\(root\): not YAML/],
    ["a NaN priority (it would scramble the order; helper-21)", "version: 1\npolicies: [{name: a, type: capability, allowed_actions: ['*'], priority: .nan}]", /policies\[0\]\.priority: must be a finite number/],
    ["an infinite window", "version: 1\npolicies: [{name: a, type: rate_limit, actions: ['x'], max_calls: 1, window: .inf}]", /policies\[0\]\.window: must be a finite number/],
    ["a %YAML 1.1 directive (010 would read as 8)", "%YAML 1.1\n---\nversion: 1\npolicies: [{name: a, type: capability, allowed_actions: ['*'], priority: 010}]", /%YAML directives are not accepted/],
    ["a duplicate key", "version: 1\nversion: 2\npolicies: []", /not YAML: Map keys must be unique/],
    ["a * inside a pattern (it never matches)", "version: 1\npolicies: [{name: a, type: capability, denied_actions: ['inference:*:gpt-4o']}]", /policies\[0\]\.denied_actions\[0\]: an action pattern is exact, or a prefix ending in \*/],
    ["a pattern with a trailing space", "version: 1\npolicies: [{name: a, type: capability, denied_actions: ['shell:rm ']}]", /policies\[0\]\.denied_actions\[0\]: an action pattern/],
    ["a pattern with a newline", "version: 1\npolicies: [{name: a, type: capability, denied_actions: [\"shell:rm\\nx\"]}]", /policies\[0\]\.denied_actions\[0\]: an action pattern/],
  ])("rejects %s, naming the field", (_title, text, err) => {
    expect(() => parsePolicyProfile(text)).toThrow(err);
  });

  it("names every bad field at once", () => {
    expect(() => parsePolicyProfile("version: 1\npolicies: [{name: a, type: capability, denied_action: [x]}, {name: b, type: rate_limit, actions: [y], max_calls: -1}]")).toThrow(
      /policies\[0\]: must NOT have additional properties \(denied_action\).*policies\[1\]\.max_calls: must be >= 0/,
    );
  });

  it.each(["*", "inference:*", "shell:rm *", "shell:ls -la", "inference:chat_completions:gpt-4o"])("accepts the action pattern %p", pattern => {
    expect(() => parsePolicyProfile(`version: 1\npolicies: [{name: a, type: capability, denied_actions: [${JSON.stringify(pattern)}]}]`)).not.toThrow();
  });

  it("accepts a rule without priority (0) and keeps the written version", () => {
    const p = parsePolicyProfile("version: 2\npolicies: [{name: a, type: capability, allowed_actions: ['*']}]");
    expect([p.version, p.policies[0].priority]).toEqual(["2", 0]);
  });
});
