// The router's operator log (pino JSON lines, stderr in a pod): credentials redacted by configuration.
import pino, { type Logger } from "pino";
import { REDACT_PATHS } from "./app";

/**
 * The router's logger: pino JSON lines at `level` to `destination`, with every REDACT_PATHS field
 * (Authorization, api-key and other credential headers, tokens) written as "[redacted]" (STYLE §8,
 * DESIGN §6 "never logs tokens").
 */
export function routerLogger(level: string, destination: pino.DestinationStream): Logger {
  return pino({ level, redact: { paths: REDACT_PATHS, censor: "[redacted]" } }, destination);
}
