import type { InferencePolicy } from "../shared/inferencepolicy-types";
import type { KarsSandbox } from "../shared/karssandbox-types";
import { sandboxesToRequeue, tenantBudgetFor, tenantBudgetShare, tenantBudgetTotal } from "./tenant-budget";

const policy = (name: string, spec: InferencePolicy["spec"], namespace = "team"): InferencePolicy => ({ metadata: { name, namespace }, spec });
const sandbox = (name: string, extra: { namespace?: string; ref?: string; suspended?: boolean; deleting?: boolean } = {}): KarsSandbox => ({
  metadata: { name, namespace: extra.namespace ?? "team", ...(extra.deleting ? { deletionTimestamp: "2026-11-30T00:00:00Z" } : {}) },
  spec: { runtime: { kind: "Hermes" }, inferenceRef: { name: extra.ref ?? "p" }, suspended: extra.suspended ?? false },
});

describe("tenantBudgetTotal", () => {
  it.each([
    ["no policy declares one: no tenant limit", [policy("p", { tokenBudget: { hourlyTokens: 5 } })], undefined],
    ["one policy's budget is the total", [policy("p", { tenantTokenBudget: { hourlyTokens: 10, dailyTokens: 100 } })], { hourlyTokens: 10, dailyTokens: 100 }],
    [
      "the smallest value per window wins across policies (fail closed)",
      [policy("a", { tenantTokenBudget: { hourlyTokens: 10, dailyTokens: 100 } }), policy("b", { tenantTokenBudget: { hourlyTokens: 20, dailyTokens: 50, monthlyTokens: 900 } })],
      { hourlyTokens: 10, dailyTokens: 50, monthlyTokens: 900 },
    ],
    ["a zero budget is a limit, not an absence", [policy("a", { tenantTokenBudget: { dailyTokens: 0 } }), policy("b", { tenantTokenBudget: { dailyTokens: 7 } })], { dailyTokens: 0 }],
  ] as const)("%s", (_t, policies, want) => {
    expect(tenantBudgetTotal(policies)).toEqual(want);
  });
});

describe("tenantBudgetShare", () => {
  it.each([
    ["one sandbox gets the whole total", { hourlyTokens: 1000, dailyTokens: 9000 }, 1, { hourlyTokens: 1000, dailyTokens: 9000 }],
    ["two sandboxes get half each", { hourlyTokens: 1000, dailyTokens: 9000 }, 2, { hourlyTokens: 500, dailyTokens: 4500 }],
    ["shares round down so that they never sum past the total", { hourlyTokens: 1000, monthlyTokens: 10 }, 3, { hourlyTokens: 333, monthlyTokens: 3 }],
    ["more sandboxes than tokens gives 0 (refuse), never 1", { dailyTokens: 2 }, 3, { dailyTokens: 0 }],
    ["n = 0 is taken as 1", { dailyTokens: 8 }, 0, { dailyTokens: 8 }],
  ] as const)("%s", (_t, total, n, want) => {
    expect(tenantBudgetShare(total, n)).toEqual(want);
  });

  it("the shares of all n sandboxes never exceed the total, for any total and n", () => {
    for (const total of [0, 1, 7, 1000, 999_999_937]) {
      for (let n = 1; n <= 40; n++) expect(tenantBudgetShare({ dailyTokens: total }, n).dailyTokens! * n).toBeLessThanOrEqual(total);
    }
  });
});

describe("tenantBudgetFor", () => {
  const tenant = policy("p", { tenantTokenBudget: { dailyTokens: 900 } });
  it.each([
    ["split among the namespace's sandboxes", [sandbox("a"), sandbox("b"), sandbox("c")], { dailyTokens: 300 }],
    ["suspended sandboxes count (resuming one changes no share mid-window)", [sandbox("a"), sandbox("b", { suspended: true })], { dailyTokens: 450 }],
    ["terminating sandboxes count until gone (their router may still run)", [sandbox("a"), sandbox("b", { deleting: true })], { dailyTokens: 450 }],
    ["sandboxes of other namespaces do not count", [sandbox("a"), sandbox("b", { namespace: "other" })], { dailyTokens: 900 }],
    ["the sandbox counts even if the list predates it", [sandbox("b")], { dailyTokens: 450 }],
  ] as const)("%s", (_t, sandboxes, want) => {
    expect(tenantBudgetFor(sandbox("a"), [tenant], sandboxes)).toEqual(want);
  });

  it("policies of other namespaces are ignored", () => {
    expect(tenantBudgetFor(sandbox("a"), [policy("p", { tenantTokenBudget: { dailyTokens: 1 } }, "other")], [sandbox("a")])).toBeUndefined();
  });
});

describe("sandboxesToRequeue", () => {
  const sandboxes = [sandbox("a", { ref: "p" }), sandbox("b", { ref: "q" }), sandbox("c", { ref: "p", namespace: "other" })];
  it.each([
    ["a policy without a tenant budget: the sandboxes naming it", policy("p", { tokenBudget: { hourlyTokens: 1 } }), ["a"]],
    ["a policy with a tenant budget: every sandbox of its namespace", policy("q", { tenantTokenBudget: { dailyTokens: 1 } }), ["a", "b"]],
    ["a policy nobody names: none", policy("z", {}), []],
  ] as const)("%s", (_t, p, want) => {
    expect(sandboxesToRequeue(p, sandboxes)).toEqual(want);
  });
});
