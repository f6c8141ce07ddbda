// The router's operator log (pino JSON lines, stderr in a pod): credentials redacted by configuration,
// and by value and by run (a quoted piece) on every line.
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
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      serializers: { err: serializeError },
      ...(credentials ? { hooks: { streamWrite: (line: string) => credentials.redact(line) } } : {}),
    },
    destination,
  );
}

/**
 * pino's error serializer (causes included), without the `data` an HTTP parser error carries: the
 * raw bytes of an upstream's answer from the fault on (undici's HTTPParserError), which may echo
 * whatever the router sent that upstream.
 */
function serializeError(err: unknown): unknown {
  const out = pino.stdSerializers.errWithCause(err as Error) as unknown as Record<string, unknown>;
  for (let e: Record<string, unknown> | undefined = out, depth = 0; e && typeof e === "object" && depth < 8; e = e.cause as Record<string, unknown> | undefined, depth++) delete e.data;
  return out;
}
