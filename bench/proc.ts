/**
 * Memory and CPU of benchmarked processes, as the kernel counts them (Linux /proc).
 */
import * as fs from "node:fs";
import { processTree } from "./alone";

/** VmRSS of one process in KiB (proc_pid_status(5)); throws when it is gone. */
function vmRssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
}

/** Resident set size in MiB of a process and its descendants (processes gone meanwhile count 0). */
export function rssMiB(pid: number): number {
  let kib = 0;
  for (const p of processTree(pid)) {
    try {
      kib += vmRssKiB(p);
    } catch {
      // process gone
    }
  }
  return kib / 1024;
}

/** rssMiB of each process of a tree, with the first 80 characters of its command line. */
export function rssByProcess(pid: number): { pid: number; command: string; mib: number }[] {
  return processTree(pid).flatMap(p => {
    try {
      const command = fs.readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").join(" ").trim().slice(0, 80);
      return [{ pid: p, command, mib: vmRssKiB(p) / 1024 }];
    } catch {
      return [];
    }
  });
}

/**
 * CPU time (ms) a process has used so far, all its threads, in its own code (user) and in the kernel
 * (system): utime and stime of proc_pid_stat(5), in clock ticks of 10 ms. Throws when it is gone.
 */
export function cpuMs(pid: number): { user: number; system: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { user: Number(fields[11]) * 10, system: Number(fields[12]) * 10 };
}

/** cpuMs (user + system, ms) of a process and its descendants (processes gone meanwhile count 0). */
export function treeCpuMs(pid: number): number {
  let ms = 0;
  for (const p of processTree(pid)) {
    try {
      const c = cpuMs(p);
      ms += c.user + c.system;
    } catch {
      // process gone
    }
  }
  return ms;
}
