import fc from "fast-check";
import { RouterError } from "../errors/router-error";
import { refusedFeatures, verifyRequestFeatures } from "./request-features";

const user = (content: unknown) => ({ model: "m", messages: [{ role: "user", content }] });
const png = "data:image/png;base64,iVBORw0KGgo=";

describe("refusedFeatures", () => {
  it.each<[string, "chat" | "responses" | "embeddings", Record<string, unknown>, string[]]>([
    // allowed: what the agent sends itself, in bytes the reservation counts
    ["plain chat passes", "chat", user("hello"), []],
    ["a data: image passes", "chat", user([{ type: "text", text: "what is this" }, { type: "image_url", image_url: { url: png, detail: "low" } }]), []],
    ["audio input passes (counted by its bytes)", "chat", user([{ type: "input_audio", input_audio: { data: "UklGR", format: "wav" } }]), []],
    ["function and custom tools pass", "chat", { ...user("x"), tools: [{ type: "function", function: { name: "f" } }, { type: "custom", custom: { name: "g" } }] }, []],
    ["a Responses string input passes", "responses", { model: "m", input: "hi" }, []],
    ["a Responses data: image passes", "responses", { model: "m", input: [{ role: "user", content: [{ type: "input_image", image_url: png }] }] }, []],
    ["previous_response_id null and background false pass", "responses", { model: "m", input: "hi", previous_response_id: null, background: false }, []],
    ["embeddings pass", "embeddings", { model: "m", input: ["a", "b"] }, []],
    ["vLLM's per-request image processing settings", "chat", { model: "m", messages: [], mm_processor_kwargs: { max_pixels: 100_000_000 } }, ["mm_processor_kwargs"]],
    ["embeddings of token arrays pass", "embeddings", { model: "m", input: [[1, 2, 3], [4]] }, []],
    ["embeddings of a conversation (vLLM's chat form) with a remote image", "embeddings", { model: "m", input: "x", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://attacker.example/a.png" } }] }] }, ["messages[0].content[0]"]],
    ["embeddings of an inline image pass", "embeddings", { model: "m", input: [{ type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } }] }, []],
    ["embeddings of an image by URL", "embeddings", { model: "m", input: [{ image_url: "https://attacker.example/a.png" }] }, ["input[0]"]],
    // refused: input the provider expands itself
    ["a previous_response_id", "responses", { model: "m", input: "hi", previous_response_id: "resp_1" }, ["previous_response_id"]],
    ["a conversation", "responses", { model: "m", input: "hi", conversation: "conv_1" }, ["conversation"]],
    ["a stored prompt", "responses", { model: "m", input: "hi", prompt: { id: "pmpt_1" } }, ["prompt"]],
    ["a background response", "responses", { model: "m", input: "hi", background: true }, ["background"]],
    ["an item reference", "responses", { model: "m", input: [{ type: "item_reference", id: "msg_1" }] }, ["input[0]"]],
    ["a stored reasoning item by id (no encrypted_content)", "responses", { model: "m", input: [{ type: "reasoning", id: "rs_1", summary: [] }] }, ["input[0]"]],
    ["an image generation call by id (no result)", "responses", { model: "m", input: [{ type: "image_generation_call", id: "ig_1" }] }, ["input[0]"]],
    ["a reasoning item with its encrypted_content passes (stateless: nothing stored is expanded)", "responses", { model: "m", input: [{ type: "reasoning", id: "rs_1", summary: [], encrypted_content: "gAAA" }] }, []],
    ["an earlier output message with its content passes", "responses", { model: "m", input: [{ type: "message", id: "msg_1", role: "assistant", content: [{ type: "output_text", text: "hi" }] }] }, []],
    ["a function call with its arguments and its output pass", "responses", { model: "m", input: [{ type: "function_call", id: "fc_1", call_id: "c", name: "f", arguments: "{}" }, { type: "function_call_output", call_id: "c", output: "ok" }] }, []],
    ["a chat audio answer by id", "chat", { model: "m", messages: [{ role: "assistant", audio: { id: "audio_1" } }, { role: "user", content: "again" }] }, ["messages[0]"]],
    ["a request's own chat template (rendered on the server)", "chat", { ...user("x"), chat_template: "{% for i in range(100000) %}x{% endfor %}" }, ["chat_template"]],
    ["… in another spelling", "chat", { ...user("x"), chatTemplate: "{{ x }}" }, ["chatTemplate"]],
    ["chat_template_kwargs pass (the server's own template reads them; their bytes are counted)", "chat", { ...user("x"), chat_template_kwargs: { enable_thinking: false } }, []],
    ["a Responses length field on chat (a lenient server ignores it: uncapped)", "chat", { ...user("x"), max_output_tokens: 1 }, ["max_output_tokens"]],
    ["chat length fields on Responses", "responses", { model: "m", input: "hi", max_tokens: 1, max_completion_tokens: 1 }, ["max_tokens", "max_completion_tokens"]],
    ["a length on embeddings", "embeddings", { model: "m", input: "a", max_tokens: 1 }, ["max_tokens"]],
    ["chat's own two length fields pass", "chat", { ...user("x"), max_tokens: 5, max_completion_tokens: 5 }, []],
    // Go's encoding/json (Ollama, LocalAI) matches keys without case and folds ſ to s, the Kelvin sign to k: the later key wins
    ["a length field spelt with ſ (U+017F), which Go reads as max_tokens", "chat", { ...user("x"), max_tokens: 1, "max_token\u017f": 100000 }, ["max_token\u017f"]],
    ["a Responses length spelt with ſ", "responses", { model: "m", input: "hi", max_output_tokens: 1, "max_output_token\u017f": 100000 }, ["max_output_token\u017f"]],
    ["a length field spelt with the Kelvin sign", "chat", { ...user("x"), "max_to\u212Aens": 100000 }, ["max_to\u212Aens"]],
    ["any other field name that is not lower-case ASCII (MODEL would replace the model a Go server reads)", "chat", { ...user("x"), MODEL: "expensive" }, ["MODEL"]],
    ["a number of completions other than chat's n (llama.cpp n_cmpl)", "chat", { ...user("x"), n_cmpl: 4 }, ["n_cmpl"]],
    ["best_of (completions generated and billed, one returned)", "chat", { ...user("x"), best_of: 4 }, ["best_of"]],
    ["n on Responses, which does not count it", "responses", { model: "m", input: "hi", n: 4 }, ["n"]],
    ["chat's n passes (it is counted)", "chat", { ...user("x"), n: 2 }, []],
    ["a chat template inside chat_template_kwargs (older vLLM let it replace the template)", "chat", { ...user("x"), chat_template_kwargs: { enable_thinking: false, chat_template: "{{ x }}" } }, ["chat_template_kwargs.chat_template"]],
    ["a stored reasoning item whose content is empty", "responses", { model: "m", input: [{ type: "reasoning", id: "rs_1", summary: [], content: [] }] }, ["input[0]"]],
    ["a stored reasoning item whose encrypted_content is empty", "responses", { model: "m", input: [{ type: "reasoning", id: "rs_1", summary: [], encrypted_content: "" }] }, ["input[0]"]],
    ["a media key in upper case, with its URL under URL", "chat", user([{ IMAGE_URL: { URL: "https://attacker.example/a.png" } }]), ["messages[0].content[0]"]],
    ["a file_id in upper case", "responses", { model: "m", input: [{ role: "user", content: [{ type: "input_image", FILE_ID: "file-1" }] }] }, ["input[0].content[0]"]],
    ["tools that are not an array", "responses", { model: "m", input: "hi", tools: { type: "web_search_preview" } }, ["tools"]],
    ["a hosted tool named as a tool_choice string", "responses", { model: "m", input: "hi", tool_choice: "web_search_preview" }, ["tool_choice"]],
    ["another spelling of tool_choice", "chat", { ...user("x"), toolChoice: { type: "web_search" } }, ["toolChoice"]],
    ["tool_choice modes pass", "chat", { ...user("x"), tool_choice: "required", tools: [{ type: "function", function: { name: "f" } }] }, []],
    ["a Responses file by URL", "responses", { model: "m", input: [{ role: "user", content: [{ type: "input_file", file_url: "https://attacker.example/x.pdf" }] }] }, ["input[0].content[0]"]],
    ["a Responses file inline (billed per page, not per byte)", "responses", { model: "m", input: [{ role: "user", content: [{ type: "input_file", file_data: "data:application/pdf;base64,JVBER", filename: "a.pdf" }] }] }, ["input[0].content[0]"]],
    ["a chat file part", "chat", user([{ type: "file", file: { file_id: "file-1" } }]), ["messages[0].content[0]"]],
    ["an image by file_id", "responses", { model: "m", input: [{ role: "user", content: [{ type: "input_image", file_id: "file-1" }] }] }, ["input[0].content[0]"]],
    ["Azure On Your Data", "chat", { ...user("x"), data_sources: [{ type: "azure_search", parameters: { authentication: { type: "system_assigned_managed_identity" } } }] }, ["data_sources"]],
    // refused: the provider fetches or acts outside the sandbox
    ["a remote chat image", "chat", user([{ type: "image_url", image_url: { url: "https://attacker.example/?secret=1" } }]), ["messages[0].content[0]"]],
    ["a remote Responses image", "responses", { model: "m", input: [{ role: "user", content: [{ type: "input_image", image_url: "http://attacker.example/a.png" }] }] }, ["input[0].content[0]"]],
    ["an image URL that is not a string", "chat", user([{ type: "image_url", image_url: { url: ["data:"] } }]), ["messages[0].content[0]"]],
    ["an MCP server", "responses", { model: "m", input: "hi", tools: [{ type: "mcp", server_url: "https://attacker.example/mcp", require_approval: "never" }] }, ["tools[0]"]],
    ["hosted search tools", "responses", { model: "m", input: "hi", tools: [{ type: "function", name: "f" }, { type: "web_search" }, { type: "file_search", vector_store_ids: ["vs_1"] }] }, ["tools[1]", "tools[2]"]],
    ["a tool without a type", "chat", { ...user("x"), tools: [{ function: { name: "f" } }] }, ["tools[0]"]],
    ["chat web search", "chat", { ...user("x"), web_search_options: {} }, ["web_search_options"]],
    // other shapes servers accept for the same features (vLLM takes a part without a type, or with a uuid, as media by its keys)
    ["audio by URL", "chat", user([{ type: "audio_url", audio_url: { url: "https://attacker.example/?leak=1" } }]), ["messages[0].content[0]"]],
    ["video by URL", "chat", user([{ type: "video_url", video_url: { url: "https://attacker.example/v.mp4" } }]), ["messages[0].content[0]"]],
    ["video inline (billed per frame, not per byte)", "chat", user([{ type: "video_url", video_url: { url: "data:video/mp4;base64,AAAA" } }]), ["messages[0].content[0]"]],
    ["a part without a type, image_url as an object", "chat", user([{ image_url: { url: "https://attacker.example/a.png" } }]), ["messages[0].content[0]"]],
    ["a part without a type, image_url as a string", "chat", user([{ image_url: "https://attacker.example/a.png" }]), ["messages[0].content[0]"]],
    ["a text part that also carries an image_url", "chat", user([{ type: "text", text: "x", uuid: "u1", image_url: "https://attacker.example/a.png" }]), ["messages[0].content[0]"]],
    ["a document_url (Mistral's shape)", "chat", user([{ type: "document_url", document_url: "https://attacker.example/d.pdf" }]), ["messages[0].content[0]"]],
    ["an uppercase or padded type", "chat", user([{ type: " IMAGE_URL ", image_url: { url: "https://attacker.example/a.png" } }]), ["messages[0].content[0]"]],
    ["a padded uppercase data: URL passes", "chat", user([{ type: "image_url", image_url: { url: "  DATA:image/png;base64,AAAA" } }]), []],
    ["a computer screenshot by URL", "responses", { model: "m", input: [{ type: "computer_call_output", call_id: "c1", output: { type: "computer_screenshot", image_url: "https://attacker.example/s.png" } }] }, ["input[0].output"]],
    ["a computer screenshot by file_id", "responses", { model: "m", input: [{ type: "computer_call_output", call_id: "c1", output: { type: "computer_screenshot", file_id: "file-abc" } }] }, ["input[0].output"]],
    ["an item given only by id (type is optional in the API)", "responses", { model: "m", input: [{ id: "msg_abc123" }] }, ["input[0]"]],
    ["an item given by id with type null", "responses", { model: "m", input: [{ id: "msg_abc123", type: null }] }, ["input[0]"]],
    ["a message with an id and its own content passes", "responses", { model: "m", input: [{ id: "msg_1", role: "user", content: "hi" }] }, []],
    ["instructions given as items are walked too", "responses", { model: "m", input: "hi", instructions: [{ role: "system", content: [{ type: "input_file", file_url: "https://a.example/x.pdf" }] }] }, ["instructions[0].content[0]"]],
    ["another spelling of a refused field", "chat", { ...user("x"), dataSources: [{}], Previous_Response_Id: "resp_1" }, ["dataSources", "Previous_Response_Id"]],
    ["another spelling of tools", "chat", { ...user("x"), tools: [{ type: "function", function: { name: "f" } }], TOOLS: [{ type: "mcp" }] }, ["TOOLS"]],
    ["an uppercase hosted tool type", "chat", { ...user("x"), tools: [{ type: "MCP" }] }, ["tools[0]"]],
    ["a tool_choice naming a hosted tool", "responses", { model: "m", input: "hi", tool_choice: { type: "web_search_preview" } }, ["tool_choice"]],
    ["allowed_tools naming a hosted tool", "responses", { model: "m", input: "hi", tool_choice: { type: "allowed_tools", mode: "auto", tools: [{ type: "function", name: "f" }, { type: "mcp", server_label: "x" }] } }, ["tool_choice.tools[1]"]],
    ["a function tool_choice passes", "chat", { ...user("x"), tool_choice: { type: "function", function: { name: "f" } } }, []],
    ["string tool_choice values pass", "chat", { ...user("x"), tool_choice: "required" }, []],
    ["length fields the router does not read", "chat", { ...user("x"), n_predict: 20000, num_predict: 1, max_new_tokens: 1, maxTokens: 1 }, ["n_predict", "num_predict", "max_new_tokens", "maxTokens"]],
    ["the standard length fields pass", "chat", { ...user("x"), max_tokens: 5, max_completion_tokens: 5 }, []],
    ["a part nested in a tool message is found too", "chat", { model: "m", messages: [{ role: "tool", tool_call_id: "1", content: [{ type: "image_url", image_url: { url: "https://x.example/a.png" } }] }] }, ["messages[0].content[0]"]],
  ])("%s", (_t, api, body, paths) => {
    expect(refusedFeatures(api, body).map(v => v.path)).toEqual(paths);
  });
});

describe("verifyRequestFeatures", () => {
  it("passes a request with nothing refused", () => {
    expect(() => verifyRequestFeatures("chat", user("hi"))).not.toThrow();
  });

  it("throws policy_violation naming every violation with its path, the first as param", () => {
    const body = { model: "m", input: [{ role: "user", content: [{ type: "input_image", image_url: "https://a.example/x.png" }] }], previous_response_id: "resp_1", tools: [{ type: "mcp" }] };
    const err = (() => {
      try {
        verifyRequestFeatures("responses", body);
      } catch (e) {
        return e as RouterError;
      }
    })();
    expect(err).toBeInstanceOf(RouterError);
    expect(err!.code).toBe("policy_violation");
    expect(err!.details.param).toBe("previous_response_id");
    expect(err!.message).toMatch(/^request uses provider-side features this sandbox does not allow: previous_response_id: .*; tools\[0\]: a "mcp" tool run by the provider .*; input\[0\]\.content\[0\]: image_url names a URL the provider would fetch \(send it as a data: URL\)$/);
  });

  it("names ten violations and counts the rest", () => {
    const body = user(Array.from({ length: 25 }, () => ({ type: "image_url", image_url: { url: "https://a.example/x.png" } })));
    expect(() => verifyRequestFeatures("chat", body)).toThrow(/messages\[0\]\.content\[9\]: [^;]+; and 15 more$/);
  });
});

describe("refusedFeatures (property)", () => {
  // an arbitrary JSON tree (as agents send: parts, nested tool results, unknown shapes) with a remote
  // URL planted under a *_url key somewhere inside it: never admitted, whatever surrounds it
  const tree = fc.letrec((tie) => ({
    node: fc.oneof({ depthSize: "small", withCrossShrink: true }, fc.jsonValue({ maxDepth: 2 }), fc.array(tie("node"), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 8 }), tie("node"), { maxKeys: 3 })),
  })).node;
  const urlKey = fc.tuple(fc.constantFrom("image", "audio", "file", "document", "x", "Image", "IMAGE"), fc.constantFrom("_url", "_URL")).map(([a, b]) => a + b);
  const remote = fc.oneof(fc.webUrl(), fc.constant("http://127.0.0.1/x"), fc.constant(" https://a.example/ "), fc.constant("HTTPS://A.EXAMPLE/"));
  const shape = fc.constantFrom<(url: string) => unknown>((u) => u, (u) => ({ url: u }));

  /** `tree` with `planted` put in at a path chosen by `choices`, at most `depth` levels down (within the 64-level bound). */
  function plant(t: unknown, planted: Record<string, unknown>, choices: number[], depth = 0): unknown {
    if (depth >= 20 || choices.length === 0) return [t, planted];
    const [c, ...rest] = choices;
    if (Array.isArray(t) && t.length > 0) return t.map((v, i) => (i === c % t.length ? plant(v, planted, rest, depth + 1) : v));
    if (t && typeof t === "object" && Object.keys(t).length > 0) {
      const keys = Object.keys(t);
      const k = keys[c % keys.length];
      return { ...(t as object), [k]: plant((t as Record<string, unknown>)[k], planted, rest, depth + 1) };
    }
    return [t, planted];
  }

  it("never admits a remote URL under a *_url key anywhere in messages or input", () => {
    fc.assert(
      fc.property(tree, urlKey, remote, shape, fc.array(fc.nat(), { maxLength: 6 }), fc.constantFrom<"chat" | "responses">("chat", "responses"), (t, key, url, form, choices, api) => {
        const content = plant(t, { [key]: form(url) }, choices);
        const body = { model: "m", [api === "chat" ? "messages" : "input"]: [{ role: "user", content }] };
        return refusedFeatures(api, body).length > 0;
      }),
      { numRuns: 500 },
    );
  });
});
