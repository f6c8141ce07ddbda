// getaddrinfo runs on libuv's thread pool (4 threads by default), which the router's asynchronous file
// work (audit and journal fdatasync, config reloads) shares, and a timed-out lookup keeps its thread
// until the system resolver gives up. An agent that can make the proxy resolve slow names (Learn mode)
// could otherwise occupy every thread. This caps the lookups in flight and bounds the wait for one.

import type { Resolver } from "./decision";

/**
 * Wraps `resolve` so that at most `maxInFlight` lookups run at once (a slot is held until the
 * underlying lookup settles, however long that takes); further ones wait in order. A caller whose
 * lookup has not settled within `timeoutMs` (waiting included) is rejected with code ETIMEOUT — fails
 * closed: the decision becomes resolve_failed. Throws RangeError for a `maxInFlight` below 1.
 */
export function limitLookups(resolve: Resolver, maxInFlight: number, timeoutMs: number): Resolver {
  if (!(maxInFlight >= 1)) throw new RangeError("maxInFlight must be at least 1");
  let inFlight = 0;
  const waiting: (() => void)[] = [];
  const release = (): void => {
    inFlight--;
    const next = waiting.shift();
    if (next) next();
  };
  const run = (name: string): Promise<string[]> => {
    inFlight++;
    const lookup = resolve(name);
    lookup.then(release, release);
    return lookup;
  };
  return (name) =>
    new Promise<string[]>((resolveAnswer, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        done = true;
        const i = waiting.indexOf(start);
        if (i >= 0) waiting.splice(i, 1);
        reject(Object.assign(new Error("dns timeout"), { code: "ETIMEOUT" }));
      }, timeoutMs);
      function start(): void {
        run(name).then(
          (answers) => {
            if (done) return;
            clearTimeout(timer);
            resolveAnswer(answers);
          },
          (err: unknown) => {
            if (done) return;
            clearTimeout(timer);
            reject(err);
          },
        );
      }
      if (inFlight < maxInFlight) start();
      else waiting.push(start);
    });
}
