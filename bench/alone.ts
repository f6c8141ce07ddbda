/**
 * Measuring each benchmark contender alone on the shared box: the other contenders' processes are
 * stopped (SIGSTOP) while one is measured and continued (SIGCONT) after, so that an idle peer's own
 * background work (timers, housekeeping threads) does not land in another's numbers.
 */
import * as fs from "node:fs";

/** A process and its descendants (Linux /proc; processes gone meanwhile are left out). */
export function processTree(pid: number): number[] {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    try {
      const kids = fs.readFileSync(`/proc/${pids[i]}/task/${pids[i]}/children`, "utf8").trim();
      if (kids) pids.push(...kids.split(/\s+/).map(Number));
    } catch {
      // process gone
    }
  }
  return pids;
}

/** Sends `signal` to every process of the trees of `pids` (undefined and null entries skipped); returns them. */
function signalTrees(pids: readonly (number | null | undefined)[], signal: NodeJS.Signals): number[] {
  const all = pids.flatMap(pid => (pid ? processTree(pid) : []));
  for (const p of all) {
    try {
      process.kill(p, signal);
    } catch {
      // gone meanwhile
    }
  }
  return all;
}

/** Runs `measure` with the processes of `others` (and their descendants) stopped; they continue after, even when it throws. */
export async function alone<T>(others: readonly (number | null | undefined)[], measure: () => Promise<T>): Promise<T> {
  const stopped = signalTrees(others, "SIGSTOP");
  try {
    return await measure();
  } finally {
    for (const p of stopped) process.kill(p, "SIGCONT");
  }
}

/** alone() for a synchronous measurement. */
export function aloneSync<T>(others: readonly (number | null | undefined)[], measure: () => T): T {
  const stopped = signalTrees(others, "SIGSTOP");
  try {
    return measure();
  } finally {
    for (const p of stopped) process.kill(p, "SIGCONT");
  }
}
