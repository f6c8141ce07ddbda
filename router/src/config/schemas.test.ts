import Ajv from "ajv";
import approvalsSchema from "../../schemas/approvals.schema.json";
import blocklistSourcesSchema from "../../schemas/blocklist-sources.schema.json";
import profileSchema from "../../schemas/profile.schema.json";
import toolPolicySchema from "../../schemas/toolpolicy.schema.json";

// The schemas are shared with the reconciler (which writes these files): each must compile and accept
// what DESIGN §6 describes, and refuse the mistakes a writer is most likely to make.
const ajv = new Ajv({ allErrors: true, strict: false });

describe.each<[string, object, unknown[], unknown[]]>([
  [
    "approvals.json",
    approvalsSchema,
    [[], [{ name: "ticket-1", hosts: [{ host: "pypi.org", port: 443 }, { host: "files.pythonhosted.org" }], expiresAt: "2026-12-01T00:00:00Z" }]],
    [{}, [{ name: "a", hosts: [], expiresAt: "2026-12-01T00:00:00Z" }], [{ name: "a", hosts: [{ host: "x" }], expiresAt: "tomorrow" }], [{ name: "a", hosts: [{ host: "x", port: 0 }], expiresAt: "2026-12-01T00:00:00Z" }]],
  ],
  [
    "blocklist-sources.json",
    blocklistSourcesSchema,
    [{}, { sources: ["https://example.invalid/oisd.txt", { url: "http://127.0.0.1:9/hosts" }], periodSeconds: 3600 }],
    [{ sources: ["ftp://x"] }, { periodSeconds: 10 }, { source: [] }],
  ],
  [
    "profile.json",
    profileSchema,
    [
      { sandbox: "s", tenant: "t", egressMode: "Learn", allowedEndpoints: [], inferencePolicy: {}, upstreams: [{ name: "m", provider: "github-models", endpoint: "https://models.github.ai/inference", apiKeyFile: "gh" }] },
      { sandbox: "s", tenant: "t", egressMode: "Learn", allowedEndpoints: [], inferencePolicy: {}, upstreams: [] }, // no model configured: inference refused, egress works
    ],
    [
      { sandbox: "s", tenant: "t", egressMode: "Learn", allowedEndpoints: [], inferencePolicy: {} },
      { sandbox: "s", tenant: "t", egressMode: "Learn", allowedEndpoints: [], inferencePolicy: {}, upstreams: {} },
    ],
  ],
  [
    "toolpolicy.yaml (parsed)",
    toolPolicySchema,
    [
      { version: "1.0", policies: [] },
      { version: 1, agent: "a", policies: [{ name: "a", type: "capability", denied_actions: ["shell:*"], priority: 10 }, { name: "b", type: "approval", actions: ["spawn:*"] }, { name: "c", type: "rate_limit", actions: ["fetch:*"], max_calls: 5, window: 60 }] },
    ],
    [
      { policies: [] },
      { version: 1, policies: [{ name: "a", type: "capability", denied_action: ["x"] }] },
      { version: 1, policies: [{ name: "c", type: "rate_limit", actions: ["fetch:*"] }] },
      { version: 1, policies: [{ name: "c", type: "approval", actions: ["x"], allowed_actions: ["y"] }] },
    ],
  ],
])("%s schema", (_name, schema, good, bad) => {
  const validate = ajv.compile(schema);
  it.each(good.map(g => [JSON.stringify(g), g]))("accepts %s", (_t, doc) => {
    expect(validate(doc)).toBe(true);
  });
  it.each(bad.map(b => [JSON.stringify(b), b]))("refuses %s", (_t, doc) => {
    expect(validate(doc)).toBe(false);
  });
});
