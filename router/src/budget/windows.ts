/** A budget window kind: UTC calendar hour, day, month (DESIGN §6). */
export type WindowKind = "hourly" | "daily" | "monthly";

export const WINDOW_KINDS: readonly WindowKind[] = ["hourly", "daily", "monthly"];

/**
 * The key of the UTC window containing `nowMs` (ms since epoch): hourly `2026-11-30T14`,
 * daily `2026-11-30`, monthly `2026-11`. Keys sort and compare as strings within a kind.
 */
export function windowKey(kind: WindowKind, nowMs: number): string {
  // Every request asks for the keys of all three kinds; they change only on the UTC hour, so the keys
  // of the current hour are computed once (a Date + toISOString per call showed in CPU profiles).
  if (!(nowMs >= hourCache.start && nowMs < hourCache.start + HOUR_MS)) hourCache = hourKeys(nowMs);
  return hourCache[kind];
}

const HOUR_MS = 3_600_000;

/** The window keys of the UTC hour containing `nowMs`. */
function hourKeys(nowMs: number): { start: number } & Record<WindowKind, string> {
  const iso = new Date(nowMs).toISOString(); // 2026-11-30T14:05:06.789Z, always UTC
  return { start: Math.floor(nowMs / HOUR_MS) * HOUR_MS, hourly: iso.slice(0, 13), daily: iso.slice(0, 10), monthly: iso.slice(0, 7) };
}

let hourCache: { start: number } & Record<WindowKind, string> = { start: NaN, hourly: "", daily: "", monthly: "" };

/** Start (ms, UTC) of the window after the one containing `nowMs`: when its spend resets. */
export function nextWindowStart(kind: WindowKind, nowMs: number): number {
  const d = new Date(nowMs);
  switch (kind) {
    case "hourly":
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours() + 1);
    case "daily":
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
    case "monthly":
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  }
}
