import { RouterError } from "../errors/router-error";
import { HeldOutput, isJudgedOrOutputFreeChatChunk, isOutputFreeEvent } from "./held-output";

describe("isOutputFreeEvent", () => {
  it.each<[string, unknown, boolean]>([
    ["response.created with an empty output is output-free", { type: "response.created", response: { status: "in_progress", output: [], content_filters: null } }, true],
    ["response.in_progress likewise", { type: "response.in_progress", response: { output: [] } }, true],
    ["response.queued without an output likewise", { type: "response.queued", response: { status: "queued" } }, true],
    ["a lifecycle event whose response already has output is not", { type: "response.in_progress", response: { output: [{ type: "message", content: [{ type: "output_text", text: "x" }] }] } }, false],
    ["a text delta carries output", { type: "response.output_text.delta", delta: "Hel" }, false],
    ["an output item carries output", { type: "response.output_item.added", item: { type: "message", content: [] } }, false],
    ["function call arguments carry output", { type: "response.function_call_arguments.delta", delta: "{" }, false],
    ["response.completed carries the whole output", { type: "response.completed", response: { output: [] } }, false],
    ["an error event is not a lifecycle event", { type: "error", code: "server_error" }, false],
    // fail closed: an event the router cannot read might carry anything
    ["an unparseable event is held", undefined, false],
    ["[DONE] is held with the rest", "[DONE]", false],
  ])("%s", (_t, data, expected) => {
    expect(isOutputFreeEvent(data)).toBe(expected);
  });
});

describe("isJudgedOrOutputFreeChatChunk", () => {
  const annotated = { hate: { filtered: false, severity: "safe" } };
  it.each<[string, unknown, boolean]>([
    ["content with its own annotation (Azure's default, synchronous mode) may go", { choices: [{ index: 0, delta: { content: "Hi" }, content_filter_results: annotated }] }, true],
    ["content without an annotation (asynchronous mode) waits", { choices: [{ index: 0, delta: { content: "Hi" } }] }, false],
    ["a tool call without an annotation waits", { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: "{" } }] } }] }, false],
    ["a refusal without an annotation waits", { choices: [{ index: 0, delta: { refusal: "I can't" } }] }, false],
    ["one unannotated choice among annotated ones waits", { choices: [{ index: 0, delta: { content: "a" }, content_filter_results: annotated }, { index: 1, delta: { content: "b" } }] }, false],
    ["the role-only first delta may go", { choices: [{ index: 0, delta: { role: "assistant", content: "" } }] }, true],
    ["the prompt annotation chunk may go", { choices: [], prompt_filter_results: [{ prompt_index: 0, content_filter_results: annotated }] }, true],
    ["a finish chunk without content may go", { choices: [{ index: 0, delta: {}, finish_reason: "stop" }] }, true],
    ["a late annotation with offsets may go", { choices: [{ index: 0, delta: {}, content_filter_results: annotated, content_filter_offsets: { start_offset: 0, end_offset: 2 } }] }, true],
    ["a usage-only chunk may go", { choices: [], usage: { total_tokens: 3 } }, true],
    ["content with an empty annotation waits (an empty object judges nothing)", { choices: [{ index: 0, delta: { content: "Hi" }, content_filter_results: {} }] }, false],
    ["content given as parts waits", { choices: [{ index: 0, delta: { content: [{ type: "text", text: "Hi" }] } }] }, false],
    ["reasoning_content waits", { choices: [{ index: 0, delta: { reasoning_content: "thinking" } }] }, false],
    ["reasoning waits", { choices: [{ index: 0, delta: { reasoning: "thinking" } }] }, false],
    ["an audio transcript waits", { choices: [{ index: 0, delta: { audio: { transcript: "Hi" } } }] }, false],
    ["a delta field not known here waits (fail closed)", { choices: [{ index: 0, delta: { novel_output: "x" } }] }, false],
    ["empty fields are no output", { choices: [{ index: 0, delta: { role: "assistant", content: null, tool_calls: [], refusal: "" } }] }, true],
    ["[DONE] may go (nothing follows it)", "[DONE]", true],
  ])("%s", (_t, data, expected) => {
    expect(isJudgedOrOutputFreeChatChunk(data)).toBe(expected);
  });
});

describe("HeldOutput", () => {
  const created = { type: "response.created", response: { output: [] } };
  const delta = { type: "response.output_text.delta", delta: "x" };

  it("holds from the first output event on, lifecycle events after it included, and releases them in order", () => {
    const held = new HeldOutput();
    expect(held.mustHold(created)).toBe(false);
    expect(held.mustHold(delta)).toBe(true);
    held.hold("e1");
    expect(held.mustHold(created)).toBe(true); // order: nothing overtakes a held event
    held.hold("e2");
    expect(held.release()).toEqual(["e1", "e2"]);
    expect(held.release()).toEqual([]);
    expect(held.mustHold(created)).toBe(false);
  });

  it("refuses to hold more than its limit with upstream_error", () => {
    const held = new HeldOutput(undefined, 10);
    held.hold("12345");
    held.hold("12345");
    const err = (() => {
      try {
        held.hold("1");
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(RouterError);
    expect((err as RouterError).code).toBe("upstream_error");
    expect((err as RouterError).message).toMatch(/past 10 bytes before its content-safety verdict/);
  });
});
