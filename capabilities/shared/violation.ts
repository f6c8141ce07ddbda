/**
 * A single admission or spec violation: the field path it concerns (kubectl style, e.g.
 * `spec.containers[1].securityContext.privileged`), what is wrong, and the rule that forbids it.
 * STYLE §4: rendered one per line as `<path>: <message> (<rule>)`.
 */
export interface Violation {
  /** Field path from the object root, e.g. `spec.volumes[0].hostPath`. */
  path: string;
  /** Lower-case statement of what must hold or what is wrong, e.g. `must be false`. */
  message: string;
  /** The rule's name, e.g. `kars sandbox posture`. */
  rule: string;
}

/** Renders one violation as `<path>: <message> (<rule>)`. */
export function formatViolation(v: Violation): string {
  return `${v.path}: ${v.message} (${v.rule})`;
}

/**
 * Renders all violations into one denial message. Pepr joins several denials with "; ", so kars
 * renders a single message with every violation, separated by "; " to stay on one kubectl line.
 */
export function formatViolations(vs: readonly Violation[]): string {
  return vs.map(formatViolation).join("; ");
}
