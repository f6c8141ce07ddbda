import { estimatePromptTokens, IMAGE_PART_TOKENS, MAX_PROMPT_DEPTH, MAX_REQUESTED_TOKENS, requestedChoices, requestedCompletionTokens } from "./estimate";

describe("estimatePromptTokens", () => {
  it("is at least the byte length of the message text (byte-level BPE never has fewer bytes than tokens)", () => {
    const text = "héllo wörld ".repeat(50);
    const n = estimatePromptTokens("chat", { messages: [{ role: "user", content: text }] });
    expect(n).toBeGreaterThanOrEqual(Buffer.byteLength(text));
  });

  it("counts tools as prompt", () => {
    const withTools = estimatePromptTokens("chat", { messages: [], tools: [{ type: "function", function: { name: "x".repeat(100) } }] });
    expect(withTools).toBeGreaterThan(100);
  });

  it("adds a fixed allowance per image part", () => {
    const body = { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://a/b.png" } }] }] };
    expect(estimatePromptTokens("chat", body)).toBeGreaterThanOrEqual(IMAGE_PART_TOKENS);
  });

  it("counts an image part whose keys a server would read without case (IMAGE_URL, TYPE)", () => {
    const body = { messages: [{ role: "user", content: [{ IMAGE_URL: { url: "data:image/png;base64,AAAA" } }, { TYPE: "Input_Image", image: "x" }] }] };
    expect(estimatePromptTokens("chat", body)).toBe(Buffer.byteLength(JSON.stringify(body)) + 2 * IMAGE_PART_TOKENS);
  });

  it.each<[string, number | undefined, number]>([
    ["the default allowance", undefined, IMAGE_PART_TOKENS],
    ["an upstream's own allowance (gpt-4o-mini at high detail)", 48_169, 48_169],
    ["a smaller one (a model with a small image budget)", 1_000, 1_000],
  ])("counts each image part at %s", (_t, imageTokens, perImage) => {
    const image = { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } };
    const body = { messages: [{ role: "user", content: [image, image] }] };
    expect(estimatePromptTokens("chat", body, imageTokens)).toBe(Buffer.byteLength(JSON.stringify(body)) + 2 * perImage);
  });

  it("reads responses input and embeddings input", () => {
    expect(estimatePromptTokens("responses", { input: "abcd" })).toBe(JSON.stringify({ input: "abcd" }).length);
    expect(estimatePromptTokens("embeddings", { input: ["ab", "cd"] })).toBe(JSON.stringify({ input: ["ab", "cd"] }).length);
  });

  it("refuses a prompt nested deeper than MAX_PROMPT_DEPTH with a TypeError (not a stack overflow)", () => {
    let deep: unknown = "x";
    for (let i = 0; i < 20_000; i++) deep = [deep];
    expect(() => estimatePromptTokens("chat", { messages: [{ role: "user", content: deep }] })).toThrow(new TypeError(`messages is nested deeper than ${MAX_PROMPT_DEPTH} levels`));
    let ok: unknown = "x";
    for (let i = 0; i < MAX_PROMPT_DEPTH - 3; i++) ok = [ok];
    expect(estimatePromptTokens("chat", { messages: [{ role: "user", content: ok }] })).toBeGreaterThan(MAX_PROMPT_DEPTH);
  });

  it("refuses deep nesting in any field, not only the prompt (the body is serialised upstream)", () => {
    let deep: unknown = "x";
    for (let i = 0; i < 20_000; i++) deep = { a: deep };
    expect(() => estimatePromptTokens("chat", { messages: [], metadata: deep })).toThrow(new TypeError(`metadata is nested deeper than ${MAX_PROMPT_DEPTH} levels`));
  });

  it("counts a part carrying an image_url as an image whatever its type", () => {
    const untyped = { messages: [{ role: "user", content: [{ image_url: { url: "data:image/png;base64,AA" } }] }] };
    expect(estimatePromptTokens("chat", untyped)).toBeGreaterThanOrEqual(IMAGE_PART_TOKENS);
    const typed = { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png;base64,AA" } }] }] };
    expect(estimatePromptTokens("chat", typed)).toBeLessThan(2 * IMAGE_PART_TOKENS); // counted once
  });

  it("counts every field, not only the prompt's: an upstream may render any field it knows into the prompt (vLLM's documents)", () => {
    const documents = [{ title: "t", text: "y".repeat(100_000) }];
    expect(estimatePromptTokens("chat", { messages: [], documents })).toBeGreaterThan(100_000);
    expect(estimatePromptTokens("chat", { messages: [], user: "x".repeat(1000) })).toBeGreaterThan(1000);
  });
});

describe("requestedCompletionTokens", () => {
  it.each<[string, "chat" | "responses" | "embeddings", Record<string, unknown>, number | undefined]>([
    ["max_completion_tokens alone for chat", "chat", { max_completion_tokens: 5 }, 5],
    ["legacy max_tokens is read for chat", "chat", { max_tokens: 9 }, 9],
    ["none asked", "chat", {}, undefined],
    ["responses read max_output_tokens", "responses", { max_output_tokens: 7 }, 7],
    ["two length fields: the larger is reserved (an upstream may honour either)", "chat", { max_completion_tokens: 10, max_tokens: 30000 }, 30000],
    ["only the API's own field is read (the other API's is refused: request-features.ts)", "responses", { max_output_tokens: 7, max_tokens: 900 }, 7],
    ["a Responses field on chat is not a chat cap", "chat", { max_output_tokens: 900 }, undefined],
    ["embeddings never complete", "embeddings", { max_tokens: 7 }, 0],
  ])("%s", (_t, kind, body, expected) => {
    expect(requestedCompletionTokens(kind, body)).toBe(expected);
  });

  it.each([0, -1, 1.5, "10", 1e300, MAX_REQUESTED_TOKENS + 1, Infinity])("rejects max_tokens=%p", v => {
    expect(() => requestedCompletionTokens("chat", { max_tokens: v })).toThrow(`max_tokens must be a positive integer up to ${MAX_REQUESTED_TOKENS}`);
  });
});

describe("requestedChoices", () => {
  it.each<[string, "chat" | "responses", Record<string, unknown>, number | RegExp]>([
    ["one completion by default", "chat", {}, 1],
    ["n completions each use the allowance", "chat", { n: 3 }, 3],
    ["responses have no n", "responses", { n: 3 }, 1],
    ["n=0 is refused", "chat", { n: 0 }, /n must be an integer/],
    ["a huge n is refused", "chat", { n: 1000 }, /n must be an integer/],
  ])("%s", (_t, kind, body, expected) => {
    if (expected instanceof RegExp) expect(() => requestedChoices(kind, body)).toThrow(expected);
    else expect(requestedChoices(kind, body)).toBe(expected);
  });
});
