/**
 * Runs kubectl the way a user does and returns what they would see (exit code, stdout, stderr).
 */
import { spawnSync } from "node:child_process";

/** Result of one kubectl run. */
export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A kubectl bound to one kubeconfig. */
export interface Kubectl {
  (args: string[], stdin?: string): KubectlResult;
  /** Like the call, but throws with stderr when kubectl fails. */
  ok(args: string[], stdin?: string): string;
  /** `kubectl get ... -o json`, parsed; undefined when NotFound. */
  json<T = Record<string, unknown>>(args: string[]): T | undefined;
}

/** Returns a kubectl runner for `kubeconfig` using the binary at `bin`. */
export function kubectl(bin: string, kubeconfig: string): Kubectl {
  const run = ((args: string[], stdin?: string): KubectlResult => {
    const r = spawnSync(bin, ["--kubeconfig", kubeconfig, ...args], { input: stdin, encoding: "utf8", timeout: 60_000 });
    return { code: r.status ?? 1, stdout: r.stdout ?? "", stderr: r.stderr ?? (r.error ? String(r.error) : "") };
  }) as Kubectl;
  run.ok = (args, stdin) => {
    const r = run(args, stdin);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
    return r.stdout;
  };
  run.json = <T>(args: string[]): T | undefined => {
    const r = run([...args, "-o", "json"]);
    if (r.code !== 0) {
      if (/NotFound|not found/.test(r.stderr)) return undefined;
      throw new Error(`kubectl ${args.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
    }
    return JSON.parse(r.stdout) as T;
  };
  return run;
}
