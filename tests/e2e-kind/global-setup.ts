/**
 * Starts the kars stack once for all e2e specs on the chosen provider (kind when docker + kind work,
 * else the local control plane; KARS_PROVIDER overrides) and tells the specs where it is.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chooseProvider } from "./providers";
import { startStack } from "./stack";

export default async function globalSetup(): Promise<void> {
  const provider = chooseProvider();
  const dir = mkdtempSync(join(tmpdir(), "kars-e2e-"));
  const t0 = Date.now();
  const stack = await startStack(provider, dir);
  process.env.KARS_E2E_DIR = dir;
  console.log(`\n[e2e] provider ${provider}: stack up in ${Date.now() - t0} ms (${dir}); KUBECONFIG=${stack.cluster.kubeconfig}`);
}
