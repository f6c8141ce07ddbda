/**
 * Fields of a KarsSandbox that the CRD accepts so that manifests written for the original kars apply
 * unchanged, but that kars does not act on (DESIGN §3). Admission names each one in a warning, which
 * kubectl prints as `Warning: …` and Argo CD / Flux show in their sync results.
 */
import type { KarsSandboxSpec } from "../shared/karssandbox-types";

/** Top-level spec fields kept but not acted on. */
export const IGNORED_SPEC_FIELDS = ["azureServices", "agent", "memoryRef", "mcpServerRefs", "pythonVersion", "entrypoint", "extraEnv"] as const;

/** One warning per ignored field present in `spec`, e.g. `spec.azureServices: kept but not acted on by kars`. */
export function ignoredFieldWarnings(spec: KarsSandboxSpec | undefined): string[] {
  if (!spec) return [];
  const out: string[] = [];
  for (const f of IGNORED_SPEC_FIELDS) {
    if (spec[f] !== undefined) out.push(`spec.${f}: kept but not acted on by kars`);
  }
  if (spec.governance && "registryMode" in spec.governance) out.push("spec.governance.registryMode: kept but not acted on by kars");
  return out;
}
