import { RouterError } from "../errors/router-error";
import { hasContentSafetyFloor, verifyContentSafety } from "./content-safety";

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

const safe = { hate: { filtered: false, severity: "safe" }, self_harm: { filtered: false, severity: "safe" }, sexual: { filtered: false, severity: "safe" }, violence: { filtered: false, severity: "safe" } };
/** An Azure OpenAI v1 Responses object with its top-level `content_filters` (prompt first, then completion), as Azure returns it. */
const azureResponse = (prompt: unknown, completion: unknown, extra: Record<string, unknown> = {}) => ({
  id: "resp_1", object: "response", status: "completed", error: null, incomplete_details: null, output: [],
  content_filters: [
    { blocked: false, source_type: "prompt", content_filter_raw: [], content_filter_results: prompt, content_filter_offsets: { start_offset: 0, end_offset: 73, check_offset: 0 } },
    { blocked: false, source_type: "completion", content_filter_raw: [], content_filter_results: completion, content_filter_offsets: { start_offset: 0, end_offset: 12, check_offset: 0 } },
  ],
  ...extra,
});
const event = (type: string, response: unknown) => ({ type, sequence_number: 9, response });

describe("verifyContentSafety", () => {
  it.each<[string, unknown, RegExp]>([
    ["results at or below every level pass", choice({ hate: { filtered: false, severity: "low" }, violence: { filtered: false, severity: "high" } }), /^ok$/],
    ["a completion severity above the level is refused", choice({ hate: { filtered: false, severity: "medium" } }), /content_policy_violation: content safety: choices\[0\]: hate severity Medium is above the policy's Low/],
    ["Safe tolerates nothing above safe", choice({ self_harm: { filtered: false, severity: "low" } }), /self_harm severity Low/],
    ["an upstream-filtered result is refused whatever the level", choice({ violence: { filtered: true, severity: "high" } }), /violence was filtered/],
    ["a prompt result under the 2023 preview name prompt_annotations is judged too", { prompt_annotations: [{ prompt_index: 0, content_filter_results: { hate: { filtered: true, severity: "high" } } }], choices: [] }, /prompt_annotations\[0\]: hate was filtered by the upstream$/],
    ["a prompt result above the level is refused", { prompt_filter_results: [{ prompt_index: 0, content_filter_results: { sexual: { filtered: false, severity: "high" } } }], choices: [] }, /prompt_filter_results\[0\]: sexual severity High/],
    ["a detected jailbreak is refused when prompt shields are required", { prompt_filter_results: [{ content_filter_results: { jailbreak: { filtered: false, detected: true } } }] }, /jailbreak detected/],
    ["bodies without filter results pass", { choices: [{ message: { content: "hi" } }] }, /^ok$/],
    // Azure's other filter kinds (content-filter-annotations doc): filtered is refused whatever the kind
    ["filtered protected material (text) is refused", choice({ ...safe, protected_material_text: { filtered: true, detected: true } }), /choices\[0\]: protected_material_text was filtered by the upstream$/],
    ["filtered protected material (code, with its citation) is refused", choice({ ...safe, protected_material_code: { filtered: true, detected: true, citation: { URL: "https://github.com/x/y", license: "GPL-3.0" } } }), /protected_material_code was filtered/],
    ["filtered profanity is refused", choice({ ...safe, profanity: { filtered: true, detected: true } }), /profanity was filtered/],
    ["a custom blocklist match is refused", choice({ ...safe, custom_blocklists: { filtered: true, details: [{ filtered: true, id: "tenant-list" }] } }), /custom_blocklists was filtered/],
    ["a filtered kind this router does not know is refused, its name cut short", choice({ ["k".repeat(300)]: { filtered: true } }), new RegExp(`choices\\[0\\]: ${"k".repeat(40)} was filtered by the upstream$`)],
    ["protected material detected but not filtered (annotate mode) passes", choice({ ...safe, protected_material_code: { filtered: false, detected: true } }), /^ok$/],
    ["under a floor, a filter that failed to judge the content is refused (fail closed)", choice({ error: { code: "content_filter_error", message: "The contents are not filtered" } }), /choices\[0\]: the upstream's content filter failed to judge it$/],
    ["a prompt the filter failed to judge is refused too", { prompt_filter_results: [{ prompt_index: 0, content_filter_results: { error: { code: "content_filter_error" } } }] }, /prompt_filter_results\[0\]: the upstream's content filter failed/],
    ["a choice the upstream stopped for content is refused (finish_reason)", { choices: [{ index: 0, finish_reason: "content_filter", message: { content: "partial" } }] }, /choices\[0\]: the upstream stopped the answer \(finish_reason content_filter\)$/],
    ["a stream chunk the upstream stopped for content is refused", { choices: [{ index: 0, delta: {}, finish_reason: "content_filter" }] }, /finish_reason content_filter/],
    ["a choice that stopped for length passes", { choices: [{ index: 0, finish_reason: "length", message: { content: "x" } }] }, /^ok$/],
    ["garbage passes (nothing to judge)", "nope", /^ok$/],
  ])("%s", (_t, body, expected) => {
    expect(outcome(body)).toMatch(expected);
  });

  // Responses API (Azure OpenAI v1): top-level content_filters on the response object, whole or in stream events
  it.each<[string, unknown, RegExp]>([
    ["a Responses answer at or below every level passes", azureResponse({ ...safe, jailbreak: { filtered: false, detected: false } }, { ...safe, hate: { filtered: false, severity: "low" } }), /^ok$/],
    ["a Responses completion above the level is refused", azureResponse(safe, { ...safe, hate: { filtered: false, severity: "medium" } }), /content_policy_violation: content safety: content_filters\[1\] \(completion\): hate severity Medium is above the policy's Low$/],
    ["a Responses prompt above the level is refused", azureResponse({ ...safe, sexual: { filtered: false, severity: "high" } }, safe), /content_filters\[0\] \(prompt\): sexual severity High is above the policy's Medium$/],
    ["a detected jailbreak in the prompt is refused when prompt shields are required", azureResponse({ ...safe, jailbreak: { filtered: false, detected: true } }, safe), /content_filters\[0\] \(prompt\): jailbreak detected$/],
    ["an upstream-filtered Responses category is refused whatever the level", azureResponse(safe, { ...safe, violence: { filtered: true, severity: "high" } }), /content_filters\[1\] \(completion\): violence was filtered by the upstream$/],
    ["a blocked annotation is refused even without category results", { object: "response", content_filters: [{ blocked: true, source_type: "completion", content_filter_results: {} }] }, /content_filters\[0\] \(completion\): blocked by the upstream$/],
    ["a response the upstream stopped for content is refused", { object: "response", status: "incomplete", incomplete_details: { reason: "content_filter" }, output: [] }, /incomplete_details: the upstream stopped the answer \(content_filter\)$/],
    ["a response cut by max_output_tokens passes", { object: "response", status: "incomplete", incomplete_details: { reason: "max_output_tokens" }, output: [] }, /^ok$/],
    ["a Responses answer without content_filters passes (OpenAI, GitHub Models report none)", { object: "response", status: "completed", error: null, output: [] }, /^ok$/],
    ["an overlong source_type is cut in the message", { object: "response", content_filters: [{ blocked: true, source_type: "x".repeat(500) }] }, new RegExp(`content_filters\\[0\\] \\(${"x".repeat(32)}\\): blocked by the upstream$`)],
    ["null content_filters pass (response.created carries null)", { object: "response", content_filters: null }, /^ok$/],
    ["null and empty content_filters entries pass", { object: "response", content_filters: [null, {}, { blocked: false, source_type: "prompt" }] }, /^ok$/],
    ["a failed response for another reason passes (not a content decision)", { object: "response", status: "failed", error: { code: "server_error", message: "x" } }, /^ok$/],
    ["a failed response for content is refused", { object: "response", status: "failed", error: { code: "content_filter", message: "x" } }, /error: the upstream stopped the answer \(content_filter\)$/],
    ["an error object on a chat body is not judged here (only response objects and error events)", { error: { code: "content_filter" } }, /^ok$/],
    ["response.created with content_filters null passes", event("response.created", { object: "response", status: "in_progress", content_filters: null, output: [] }), /^ok$/],
    ["an output text delta passes (it carries no filter results)", { type: "response.output_text.delta", item_id: "msg_1", output_index: 0, content_index: 0, delta: "Hel" }, /^ok$/],
    ["response.completed within the floor passes", event("response.completed", azureResponse(safe, safe)), /^ok$/],
    ["response.completed above the floor is refused, naming the event's response", event("response.completed", azureResponse(safe, { ...safe, hate: { filtered: false, severity: "high" } })), /response\.content_filters\[1\] \(completion\): hate severity High is above the policy's Low$/],
    ["response.incomplete for content_filter is refused", event("response.incomplete", { object: "response", status: "incomplete", incomplete_details: { reason: "content_filter" } }), /response\.incomplete_details: the upstream stopped the answer \(content_filter\)$/],
    ["response.failed with a content_filter error is refused", event("response.failed", { object: "response", status: "failed", error: { code: "content_filter", message: "filtered" } }), /response\.error: the upstream stopped the answer \(content_filter\)$/],
    ["response.failed with a null error passes (Azure's error event follows it)", event("response.failed", { object: "response", status: "failed", error: null, content_filters: null }), /^ok$/],
    ["Azure's terminal error event for content is refused", { type: "error", error: { type: "invalid_request_error", code: "content_policy_violation", message: "blocked" } }, /the upstream stopped the stream \(error content_policy_violation\)$/],
    ["OpenAI's flat error event for content is refused", { type: "error", code: "content_filter", message: "filtered", param: null, sequence_number: 3 }, /the upstream stopped the stream \(error content_filter\)$/],
    ["an error event for another reason passes (the router forwards it)", { type: "error", error: { code: "server_error", message: "boom" } }, /^ok$/],
  ])("%s", (_t, body, expected) => {
    expect(outcome(body)).toMatch(expected);
  });

  it("without a policy only upstream-filtered results are refused", () => {
    expect(() => verifyContentSafety(undefined, choice({ hate: { filtered: false, severity: "high" } }))).not.toThrow();
    expect(() => verifyContentSafety(undefined, choice({ hate: { filtered: true, severity: "high" } }))).toThrow(/hate was filtered/);
    expect(() => verifyContentSafety(undefined, azureResponse(safe, { ...safe, hate: { filtered: false, severity: "high" } }))).not.toThrow();
    expect(() => verifyContentSafety(undefined, azureResponse({ ...safe, jailbreak: { filtered: false, detected: true } }, safe))).not.toThrow();
    expect(() => verifyContentSafety(undefined, { object: "response", content_filters: [{ blocked: true, source_type: "completion" }] })).toThrow(/blocked by the upstream/);
    expect(() => verifyContentSafety(undefined, choice({ profanity: { filtered: true, detected: true } }))).toThrow(/profanity was filtered/);
    expect(() => verifyContentSafety(undefined, { choices: [{ finish_reason: "content_filter" }] })).toThrow(/finish_reason content_filter/);
    // no floor: a filter that did not run is not a refusal (there is nothing the policy asks it to judge)
    expect(() => verifyContentSafety(undefined, choice({ error: { code: "content_filter_error" } }))).not.toThrow();
  });
});

describe("hasContentSafetyFloor", () => {
  it.each<[string, Parameters<typeof hasContentSafetyFloor>[0], boolean]>([
    ["no contentSafety is no floor", undefined, false],
    ["an empty contentSafety is no floor", {}, false],
    ["requirePromptShields false alone is no floor", { requirePromptShields: false }, false],
    ["one category level is a floor", { violence: "High" }, true],
    ["requirePromptShields alone is a floor", { requirePromptShields: true }, true],
  ])("%s", (_t, policy, expected) => {
    expect(hasContentSafetyFloor(policy)).toBe(expected);
  });
});
