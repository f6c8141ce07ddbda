import { desiredWebhookConfigurations } from "./webhook-configurations";

describe("desiredWebhookConfigurations", () => {
  const [mutating, validating] = desiredWebhookConfigurations({ url: "https://127.0.0.1:9443", caBundle: "Q0E=" }, "secret") as {
    kind: string;
    webhooks: { clientConfig: { url?: string; service?: { path: string } }; failurePolicy: string; sideEffects: string; namespaceSelector?: unknown; rules: { resources: string[] }[] }[];
  }[];

  it.each([
    ["mutating pods", mutating, "MutatingWebhookConfiguration", "https://127.0.0.1:9443/mutate/secret", "Fail"],
    ["validating pods", validating, "ValidatingWebhookConfiguration", "https://127.0.0.1:9443/validate/secret", "Fail"],
  ])("%s: fail closed only in sandbox namespaces, sideEffects None", (_t, cfg, kind, url, policy) => {
    expect(cfg!.kind).toBe(kind);
    const w = cfg!.webhooks[0]!;
    expect(w.clientConfig.url).toBe(url);
    expect(w.failurePolicy).toBe(policy);
    expect(w.sideEffects).toBe("None");
    expect(w.namespaceSelector).toEqual({ matchLabels: { "kars.azure.com/role": "sandbox" } });
    expect(w.rules[0]!.resources).toEqual(["pods", "pods/ephemeralcontainers"]);
  });

  it.each([
    ["KarsSandbox warnings", 1, "karssandboxes"],
    ["KarsImagePolicy checks", 2, "karsimagepolicies"],
  ])("%s never block while kars is down (failurePolicy Ignore, any namespace)", (_t, i, resource) => {
    const w = validating!.webhooks[i as number]!;
    expect(w.failurePolicy).toBe("Ignore");
    expect(w.namespaceSelector).toBeUndefined();
    expect(w.rules[0]!.resources).toEqual([resource]);
  });

  it("targets an in-cluster service with the path", () => {
    const [m] = desiredWebhookConfigurations({ service: { namespace: "kars-system", name: "kars", port: 443 }, caBundle: "Q0E=" }, "p") as { webhooks: { clientConfig: { service: { path: string } } }[] }[];
    expect(m!.webhooks[0]!.clientConfig.service.path).toBe("/mutate/p");
  });
});
