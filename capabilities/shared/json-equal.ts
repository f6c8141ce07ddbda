/**
 * Structural equality of plain JSON values (objects, arrays, scalars), insensitive to key order and
 * to keys whose value is undefined. Used to recognise injected containers and to skip no-op status
 * writes.
 */

/** True when `a` and `b` are the same JSON value. */
export function sameJson(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

/** A canonical string of a JSON value: object keys sorted, undefined members dropped. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(",")}}`;
  }
  return JSON.stringify(v ?? null);
}
