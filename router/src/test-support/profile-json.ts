/**
 * A complete, valid profile.json text (router/schemas/profile.schema.json) for tests that care about
 * some of its fields: `fields` over a minimal document (sandbox and tenant "t", Learn mode, no
 * endpoints, an empty InferencePolicy, no upstreams). Both readers of the file (the inference side and
 * the egress proxy) judge it whole, so a test profile must be whole too.
 */
export function profileJson(fields: Record<string, unknown> = {}): string {
  return JSON.stringify({ sandbox: "t", tenant: "t", egressMode: "Learn", allowedEndpoints: [], inferencePolicy: {}, upstreams: [], ...fields });
}
