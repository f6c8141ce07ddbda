/**
 * What every e2e spec needs: the stack started by global-setup, a kubectl for it, and polling.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { kubectl, type Kubectl } from "./kubectl";
import { readStack, startController, type Stack } from "./stack";
import { eventually, stopGroups } from "./local/processes";

/** The running stack and a kubectl bound to it. */
export function e2e(): { stack: Stack; k: Kubectl } {
  const dir = process.env.KARS_E2E_DIR;
  if (!dir) throw new Error("KARS_E2E_DIR is not set: run e2e specs through jest's e2e project (global-setup)");
  const stack = readStack(dir);
  return { stack, k: kubectl(stack.cluster.kubectlBin, stack.cluster.kubeconfig) };
}

export { eventually };

/** Stops the kars controller process (webhooks stay registered, so the apiserver cannot reach it). */
export async function stopController(stack: Stack): Promise<void> {
  await stopGroups([stack.controller.pid]);
}

/** Starts the controller again on the same port and API path and records its pid. */
export async function restartController(stack: Stack): Promise<void> {
  stack.controller = await startController(stack.cluster, stack.dir, stack.controller);
  writeFileSync(join(stack.dir, "stack.json"), JSON.stringify(stack, null, 2));
}

/** A KarsSandbox manifest (YAML) for tests. */
export function sandboxYaml(name: string, namespace: string, spec: string): string {
  return `apiVersion: kars.azure.com/v1alpha1
kind: KarsSandbox
metadata:
  name: ${name}
  namespace: ${namespace}
spec:
${spec.replace(/^/gm, "  ")}
`;
}
