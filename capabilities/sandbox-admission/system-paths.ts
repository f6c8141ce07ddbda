/**
 * Paths a sandbox may never make writable (by a writable path or a volume mount): mounting over them
 * would defeat the read-only root filesystem (e.g. a writable /etc or /usr/local/bin).
 */
import { posix } from "node:path";

/** Top-level directories of the image's root filesystem that stay read-only. */
export const SYSTEM_PATHS = ["/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/root", "/run", "/sbin", "/sys", "/usr", "/var/run"];

/** Normalises an absolute path (`//`, `.`, `..`, trailing `/`). */
export function normalizePath(p: string): string {
  const n = posix.normalize(p.startsWith("/") ? p : `/${p}`);
  return n.length > 1 && n.endsWith("/") ? n.slice(0, -1) : n;
}

/** True for `/` and for any path at or under a SYSTEM_PATHS entry (after normalisation). */
export function isSystemPath(p: string): boolean {
  const n = normalizePath(p);
  return n === "/" || SYSTEM_PATHS.some(s => n === s || n.startsWith(`${s}/`));
}
