/** Stops the stack started by global-setup: nothing is left running. */
import { readStack, stopStack } from "./stack";

export default async function globalTeardown(): Promise<void> {
  const dir = process.env.KARS_E2E_DIR;
  if (!dir) return;
  await stopStack(readStack(dir));
}
