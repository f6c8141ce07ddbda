import { RouterError } from "../errors/router-error";
import { verifyContentSafety } from "./content-safety";

const policy = { hate: "Low", selfHarm: "Safe", sexual: "Medium", violence: "High", requirePromptShields: true } as const;

function outcome(body: unknown): string {
  try {
    verifyContentSafety(policy, body);
    return "ok";
  } catch (err) {
    return err instanceof RouterError ? `${err.code}: ${err.message}` : String(err);
  }
}

const choice = (cfr: unknown) => ({ choices: [{ index: 0, content_filter_results: cfr }] });

describe("verifyContentSafety", () => {
  it.each<[string, unknown, RegExp]>([
    ["results at or below every level pass", choice({ hate: { filtered: false, severity: "low" }, violence: { filtered: false, severity: "high" } }), /^ok$/],
    ["a completion severity above the level is refused", choice({ hate: { filtered: false, severity: "medium" } }), /content_policy_violation: content safety: choices\[0\]: hate severity Medium is above the policy's Low/],
    ["Safe tolerates nothing above safe", choice({ self_harm: { filtered: false, severity: "low" } }), /self_harm severity Low/],
    ["an upstream-filtered result is refused whatever the level", choice({ violence: { filtered: true, severity: "high" } }), /violence was filtered/],
    ["a prompt result above the level is refused", { prompt_filter_results: [{ prompt_index: 0, content_filter_results: { sexual: { filtered: false, severity: "high" } } }], choices: [] }, /prompt_filter_results\[0\]: sexual severity High/],
    ["a detected jailbreak is refused when prompt shields are required", { prompt_filter_results: [{ content_filter_results: { jailbreak: { filtered: false, detected: true } } }] }, /jailbreak detected/],
    ["bodies without filter results pass", { choices: [{ message: { content: "hi" } }] }, /^ok$/],
    ["garbage passes (nothing to judge)", "nope", /^ok$/],
  ])("%s", (_t, body, expected) => {
    expect(outcome(body)).toMatch(expected);
  });

  it("without a policy only upstream-filtered results are refused", () => {
    expect(() => verifyContentSafety(undefined, choice({ hate: { filtered: false, severity: "high" } }))).not.toThrow();
    expect(() => verifyContentSafety(undefined, choice({ hate: { filtered: true, severity: "high" } }))).toThrow(/hate was filtered/);
  });
});
