/**
 * Reconciler settings, parsed once from the controller's environment into a frozen object.
 */
import type { RuntimeKind } from "../shared/karssandbox-types";
import { parseProfile, ProfileError } from "../../router/src/config/profile";

/** One model upstream as the router profile names it (DESIGN §6 `upstreams[]`). */
export interface UpstreamConfig {
  name: string;
  provider: "azure-openai" | "foundry" | "github-models" | "openai-compatible";
  endpoint: string;
  deployment?: string;
  apiVersion?: string;
  apiKeyFile?: string;
  /** Tokens the router reserves per image part for this upstream (router profile `imageTokens`). */
  imageTokens?: number;
}

/** Reconcile configuration (frozen). */
export interface ReconcileConfig {
  /** Agent image per runtime kind (BYO uses the sandbox's own image). */
  runtimeImages: Readonly<Record<Exclude<RuntimeKind, "BYO">, string>>;
  /** BYO strict mode: refuse contract versions other than `v1` (DESIGN §4). */
  byoStrict: boolean;
  /** Model upstreams written into every router profile. */
  upstreams: readonly UpstreamConfig[];
  /** Periodic resync of every KarsSandbox (ms): watch streams drop (PITFALLS). */
  resyncMs: number;
}

/** Agent image per runtime kind when the sandbox names none (`agentCode.oci.image`). */
export const DEFAULT_RUNTIME_IMAGES: ReconcileConfig["runtimeImages"] = Object.freeze({
  OpenClaw: "ghcr.io/azure/kars/runtime-openclaw:0.1.0",
  OpenAIAgents: "ghcr.io/azure/kars/runtime-openai-agents:0.1.0",
  MicrosoftAgentFramework: "ghcr.io/azure/kars/runtime-maf:0.1.0",
  LangGraph: "ghcr.io/azure/kars/runtime-langgraph:0.1.0",
  Anthropic: "ghcr.io/azure/kars/runtime-anthropic:0.1.0",
  PydanticAi: "ghcr.io/azure/kars/runtime-pydantic-ai:0.1.0",
  Hermes: "ghcr.io/azure/kars/runtime-hermes:0.1.0",
});

/**
 * Reads `KARS_BYO_STRICT` (true|false, default true), `KARS_UPSTREAMS` (JSON array of
 * UpstreamConfig, each judged as the router judges profile.json's `upstreams`) and
 * `KARS_RESYNC_SECONDS` (default 60). Throws naming the variable and the bad field on bad input.
 */
export function parseReconcileConfig(env: Record<string, string | undefined>): ReconcileConfig {
  const strict = env.KARS_BYO_STRICT ?? "true";
  if (strict !== "true" && strict !== "false") throw new Error(`KARS_BYO_STRICT: must be true or false, found ${JSON.stringify(strict)}`);
  let upstreams: UpstreamConfig[] = [];
  if (env.KARS_UPSTREAMS) {
    try {
      upstreams = JSON.parse(env.KARS_UPSTREAMS) as UpstreamConfig[];
    } catch (e) {
      throw new Error(`KARS_UPSTREAMS: must be a JSON array (${(e as Error).message})`);
    }
    if (!Array.isArray(upstreams)) throw new Error("KARS_UPSTREAMS: must be a JSON array");
    // every router gets these upstreams: judged here as the router judges profile.json, or every new
    // sandbox's router would refuse its profile at start (helper-22's red-team round)
    try {
      parseProfile(JSON.stringify({ sandbox: "check", tenant: "check", egressMode: "Strict", allowedEndpoints: [], inferencePolicy: {}, upstreams }));
    } catch (e) {
      throw new Error(`KARS_UPSTREAMS: ${e instanceof ProfileError ? e.problems.join("; ") : (e as Error).message} (router/schemas/profile.schema.json)`);
    }
  }
  const resync = Number(env.KARS_RESYNC_SECONDS ?? "60");
  if (!Number.isFinite(resync) || resync <= 0) throw new Error(`KARS_RESYNC_SECONDS: must be a positive number, found ${env.KARS_RESYNC_SECONDS}`);
  return Object.freeze({ runtimeImages: DEFAULT_RUNTIME_IMAGES, byoStrict: strict === "true", upstreams: Object.freeze(upstreams), resyncMs: resync * 1000 });
}
