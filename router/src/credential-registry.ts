import { redactCredentialRuns } from "./inference/stream-secret-guard";
import { credentialValues, redactSecrets } from "./inference/upstream-answer";

/** Most values remembered (a credential and each of its base64 forms count one each, up to 7 a credential: ~70 credentials, days of hourly tokens); the oldest are forgotten first. */
export const MAX_REMEMBERED_VALUES = 512;

/**
 * The credentials this router has put in upstream requests (tokens, API keys, with their base64 forms:
 * credentialValues), so that its log can cut them out of any line, whatever field an error carried
 * them in (an HTTP parser error quoting an upstream's bytes, a cause's message). A safety net behind
 * the logger's redaction paths: a line is written with every remembered value replaced by
 * `[redacted]`. Holds credentials: never log or serialise it.
 */
export class CredentialRegistry {
  private readonly values = new Set<string>();
  private list: string[] = [];
  private last: readonly string[] | null = null;

  /** Remembers the credentials in upstream auth `headers` (cheap when they are known already: a Set lookup each). */
  rememberHeaders(headers: Record<string, string>): void {
    const values = credentialValues(headers);
    if (values === this.last) return; // the same credential as the call before (credentialValues caches)
    this.last = values;
    let added = false;
    for (const v of values) {
      if (this.values.has(v)) continue;
      this.values.add(v);
      added = true;
    }
    if (!added) return;
    while (this.values.size > MAX_REMEMBERED_VALUES) this.values.delete(this.values.values().next().value as string);
    // longest first: a value inside another (a base64 form's core) must not cut the longer one apart
    this.list = [...this.values].sort((a, b) => b.length - a.length);
  }

  /**
   * `text` with every remembered credential, and every run of 12 or more characters of one
   * (redactCredentialRuns: a quoted piece of it), replaced by `[redacted]` (`text` itself when none occurs).
   */
  redact(text: string): string {
    return this.list.length === 0 ? text : redactCredentialRuns(redactSecrets(text, this.list), this.list);
  }
}
