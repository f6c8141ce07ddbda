import type { Profile } from "../config/profile";
import { RouterError } from "../errors/router-error";
import { inferenceAction, selectUpstreams } from "./model-selection";

const up = (name: string) => ({ name, provider: "openai-compatible" as const, endpoint: "http://127.0.0.1:1/v1", apiKeyFile: "k" });
const profile = (extra: Partial<Profile["inferencePolicy"]> = {}): Profile => ({
  sandbox: "s",
  tenant: "t",
  egressMode: "Strict",
  allowedEndpoints: [],
  inferencePolicy: { modelPreference: { primary: "a", fallback: ["b", "c"] }, ...extra },
  upstreams: [up("a"), up("b"), up("c"), up("d")],
});

describe("selectUpstreams", () => {
  it.each<[string, Profile, string | undefined, string[] | string]>([
    ["no model means primary then fallbacks", profile(), undefined, ["a", "b", "c"]],
    ["a fallback model asked for goes first", profile(), "b", ["b", "a", "c"]],
    ["a model outside the preference is a policy violation", profile(), "d", "policy_violation"],
    ["without a preference every upstream is allowed", { ...profile(), inferencePolicy: {} }, "d", ["d", "a", "b", "c"]],
    ["an action outside appliesTo is a policy violation", profile({ appliesTo: { action: "embeddings" } }), "a", "policy_violation"],
    ["no upstream configured is upstream_unavailable", { ...profile(), upstreams: [] }, undefined, "upstream_unavailable"],
    ["no upstream configured, with a preference, is upstream_unavailable", { ...profile(), upstreams: [] }, "a", "upstream_unavailable"],
  ])("%s", (_t, p, model, expected) => {
    let result: string[] | string;
    try {
      result = selectUpstreams(p, "chat", model).map(u => u.name);
    } catch (err) {
      result = (err as RouterError).code;
    }
    expect(result).toEqual(expected);
  });

  it("names actions as DESIGN §6 does", () => {
    expect(inferenceAction("chat", "gpt-4o")).toBe("inference:chat_completions:gpt-4o");
    expect(inferenceAction("responses", "gpt-4o")).toBe("inference:chat_completions:gpt-4o"); // same generation, same rule
    expect(inferenceAction("embeddings", "emb")).toBe("inference:embeddings:emb");
  });
});
