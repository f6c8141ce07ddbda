// The router's operator log (pino JSON lines, stderr in a pod): credentials redacted by configuration.
import pino, { type Logger } from "pino";
import { REDACT_PATHS } from "./app";
import type { CredentialRegistry } from "./credential-registry";

/**
 * The router's logger: pino JSON lines at `level` to `destination`, with every REDACT_PATHS field
 * (Authorization, api-key and other credential headers, tokens) written as "[redacted]" (STYLE §8,
 * DESIGN §6 "never logs tokens"); and, when `credentials` is given, every credential it has seen
 * cut out of each whole line before it is written, whichever field carried it (an upstream's bytes
 * quoted by an error, for instance).
 */
export function routerLogger(level: string, destination: pino.DestinationStream, credentials?: CredentialRegistry): Logger {
  return pino({ level, redact: { paths: REDACT_PATHS, censor: "[redacted]" }, ...(credentials ? { hooks: { streamWrite: (line: string) => credentials.redact(line) } } : {}) }, destination);
}
