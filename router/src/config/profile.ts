import Ajv, { type ErrorObject } from "ajv";
import { createHash } from "node:crypto";
import profileSchema from "../../schemas/profile.schema.json";
import { canonicalEndpointHost, normaliseHost } from "../egress/host";
import { classifyAddress } from "../egress/ip-address";

/** Severity levels of Azure AI content filtering, lowest first. */
export const SEVERITIES = ["Safe", "Low", "Medium", "High"] as const;
export type Severity = (typeof SEVERITIES)[number];

/** Token limits (tokens); an absent field is unlimited. Windows are UTC calendar hour/day/month. */
export interface TokenBudget {
  perRequestTokens?: number;
  hourlyTokens?: number;
  dailyTokens?: number;
  monthlyTokens?: number;
}

/** InferencePolicy spec as projected into profile.json (DESIGN §3). */
export interface InferencePolicySpec {
  appliesTo?: { sandboxName?: string; sandboxMatchLabels?: Record<string, string>; action?: "chat" | "responses" | "embeddings" | "image" | "*" };
  tokenBudget?: TokenBudget;
  contentSafety?: { hate?: Severity; selfHarm?: Severity; sexual?: Severity; violence?: Severity; requirePromptShields?: boolean };
  modelPreference?: { primary: string; fallback?: string[] };
}

export type UpstreamProvider = "azure-openai" | "foundry" | "github-models" | "openai-compatible";

/** One model upstream (DESIGN §6). `name` is the model name agents ask for. */
export interface UpstreamSpec {
  name: string;
  provider: UpstreamProvider;
  endpoint: string;
  deployment?: string;
  apiVersion?: string;
  apiKeyFile?: string;
  /** Tokens reserved per image part when this upstream may serve the request (default IMAGE_PART_TOKENS, budget/estimate.ts). */
  imageTokens?: number;
}

/** Token bucket: refill `rps` tokens/s up to `burst`. */
export interface BucketSpec {
  rps: number;
  burst: number;
}

/** profile.json, validated (router/schemas/profile.schema.json; DESIGN §6 "Router configuration directory"). */
export interface Profile {
  sandbox: string;
  tenant: string;
  egressMode: "Strict" | "Learn";
  allowedEndpoints: { host: string; port?: number }[];
  /** kars extension: the egress proxy's Encrypted Client Hello policy (egress/config.ts); absent = Refuse in Strict, Allow in Learn. */
  encryptedClientHello?: "Refuse" | "Allow";
  inferencePolicy: InferencePolicySpec;
  upstreams: UpstreamSpec[];
  listen?: { api?: string; egress?: string; ops?: string };
  tenantTokenBudget?: TokenBudget;
  rateLimits?: { global?: BucketSpec; perAgent?: BucketSpec };
}

/** A validated profile plus the SHA-256 of the bytes it came from (`/internal/policy-status`). */
export interface LoadedProfile {
  profile: Readonly<Profile>;
  digest: string;
}

/** Thrown by parseProfile; `problems` holds one `<json path>: <message>` per schema violation. */
export class ProfileError extends Error {
  override readonly name = "ProfileError";
  constructor(readonly problems: string[]) {
    super(`profile.json is invalid: ${problems.join("; ")}`);
  }
}

const ajv = new Ajv({ allErrors: true, useDefaults: false, strict: false });
const validate = ajv.compile<Profile>(profileSchema);

/**
 * Parses and validates profile.json text. Returns a deep-frozen profile and `sha256:<hex>` of the
 * bytes. Throws ProfileError naming every bad field by path (or the JSON syntax error).
 */
export function parseProfile(text: string): LoadedProfile {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ProfileError([`(root): not JSON: ${(err as Error).message}`]);
  }
  if (!validate(data)) throw new ProfileError((validate.errors ?? []).map(describeSchemaError));
  const problems = crossFieldProblems(data);
  if (problems.length > 0) throw new ProfileError(problems);
  return { profile: deepFreeze(data), digest: `sha256:${createHash("sha256").update(text).digest("hex")}` };
}

/**
 * Rules JSON Schema cannot say: allowlist hosts the egress proxy can use (egress/host.ts, the same rule
 * it applies), references between fields, budget ordering (as the CRD's CEL does).
 */
function crossFieldProblems(p: Profile): string[] {
  const problems: string[] = [];
  p.allowedEndpoints.forEach((e, i) => {
    const c = canonicalEndpointHost(e.host);
    if (!c.ok) problems.push(`allowedEndpoints[${i}].host: ${c.reason}`);
  });
  const names = new Set<string>();
  p.upstreams.forEach((u, i) => {
    if (names.has(u.name)) problems.push(`upstreams[${i}].name: duplicate upstream name ${JSON.stringify(u.name)}`);
    names.add(u.name);
    if ((u.provider === "github-models" || u.provider === "openai-compatible") && !u.apiKeyFile) {
      problems.push(`upstreams[${i}].apiKeyFile: required for provider ${u.provider}`);
    }
    // an Entra token or Azure api-key goes only over TLS (plain http only to this machine, for tests)
    if ((u.provider === "azure-openai" || u.provider === "foundry") && !/^https:\/\//i.test(u.endpoint) && !isLoopbackHttp(u.endpoint)) {
      problems.push(`upstreams[${i}].endpoint: provider ${u.provider} sends Entra tokens or api-keys, so it needs https:// (http:// only to a loopback address)`);
    }
  });
  const pref = p.inferencePolicy.modelPreference;
  // with no upstream at all every inference request is refused (selectUpstreams), so the names are moot
  if (pref && p.upstreams.length > 0) {
    [pref.primary, ...(pref.fallback ?? [])].forEach((m, i) => {
      const path = i === 0 ? "inferencePolicy.modelPreference.primary" : `inferencePolicy.modelPreference.fallback[${i - 1}]`;
      if (!names.has(m)) problems.push(`${path}: names no upstream (${JSON.stringify(m)})`);
    });
  }
  const b = p.inferencePolicy.tokenBudget;
  if (b) {
    if (b.monthlyTokens !== undefined && b.dailyTokens !== undefined && b.monthlyTokens < b.dailyTokens)
      problems.push("inferencePolicy.tokenBudget.monthlyTokens: must be >= dailyTokens");
    if (b.dailyTokens !== undefined && b.hourlyTokens !== undefined && b.dailyTokens < b.hourlyTokens)
      problems.push("inferencePolicy.tokenBudget.dailyTokens: must be >= hourlyTokens");
  }
  return problems;
}

/** Whether `url` is plain http to `localhost` or an address the egress classifier calls loopback (127.0.0.0/8, ::1). */
function isLoopbackHttp(url: string): boolean {
  try {
    const u = new URL(url);
    if (u.protocol !== "http:") return false;
    if (u.hostname === "localhost") return true;
    const n = normaliseHost(u.hostname);
    if (!n.ok || n.host.kind === "name") return false;
    const c = classifyAddress(n.host.name);
    return !c.public && c.reason === "loopback";
  } catch {
    return false;
  }
}

/**
 * One `<json path>: <message>` line for an ajv error (paths as `a.b[2].c`, `(root)` for the document),
 * naming the unknown field or the allowed values where ajv knows them. Shared with toolpolicy.yaml's check.
 */
export function describeSchemaError(e: ErrorObject): string {
  const path = e.instancePath === "" ? "(root)" : e.instancePath.slice(1).replace(/\/(\d+)(?=\/|$)/g, "[$1]").replace(/\//g, ".");
  const extra = e.keyword === "additionalProperties" ? ` (${String((e.params as { additionalProperty: string }).additionalProperty)})` : "";
  const allowed = e.keyword === "enum" ? ` (${(e.params as { allowedValues: unknown[] }).allowedValues.join(", ")})` : "";
  const missing = e.keyword === "required" ? "" : "";
  return `${path}: ${e.message ?? "invalid"}${extra}${allowed}${missing}`;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
