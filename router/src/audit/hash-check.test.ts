import { hash } from "node:crypto";
import { auditHash, GENESIS, HASH_SUFFIX_LENGTH, withHash } from "./audit-log";
import { firstHashMismatch, HashChecker, newHashScratch } from "./hash-check";

/** A record line (with "\n") chained to `prev`, its ts of `ts`, and its hash. */
function record(seq: number, prev: string, ts = "2026-11-30T23:44:44.936Z", event = `{"n":${seq},"model":"modèle-日本"}`): { line: string; hash: string } {
  const body = `{"seq":${seq},"ts":"${ts}","prev":"${prev}","event":${event}}`;
  const h = auditHash(prev, body);
  return { line: `${withHash(body, h)}\n`, hash: h };
}

/** `n` chained record lines. */
function chain(n: number): string[] {
  const lines: string[] = [];
  let prev = GENESIS;
  for (let i = 0; i < n; i++) {
    const r = record(i, prev);
    lines.push(r.line);
    prev = r.hash;
  }
  return lines;
}

describe("firstHashMismatch", () => {
  const three = chain(3);
  it.each<[string, string[], number]>([
    ["intact records", three, -1],
    ["no records", [], -1],
    ["an edited event", [three[0], three[1].replace('"n":1', '"n":7'), three[2]], 1],
    ["an edited hash", [three[0], three[1], three[2].replace(/"hash":"(.)/, (_m, c: string) => `"hash":"${c === "0" ? "1" : "0"}`)], 2],
    ["a prev that is not the one hashed", [three[0], three[1].replace(/"prev":"(.)/, (_m, c: string) => `"prev":"${c === "0" ? "1" : "0"}`)], 1],
    ["an uppercase hash (the hex of the hash is lowercase)", [three[0].replace(/"hash":"([0-9a-f]+)"/, (_m, h: string) => `"hash":"${h.toUpperCase()}"`)], 0],
    ["a line too short for a hash", [three[0], '{"seq":1}\n'], 1],
    ["a line without a prev", [three[0], three[1].replace(',"prev":"', ',"prv":"')], 1],
    ["a record whose ts is not 24 characters (prev found by search)", [record(0, GENESIS, "1970-01-01T00:00:00Z").line], -1],
    ["a line without its newline", [three[0].trimEnd()], 0],
  ])("%s", (_t, lines, expected) => {
    const buf = Buffer.from(`xx${lines.join("")}`); // at an offset, as pieces inside a larger buffer are
    expect(firstHashMismatch(hash, buf, 2, buf.length, newHashScratch())).toBe(expected);
  });

  it("grows its scratch buffer for a line longer than it", () => {
    const long = record(0, GENESIS, undefined, `{"text":"${"x".repeat(10_000)}"}`).line;
    const buf = Buffer.from(long);
    expect(firstHashMismatch(hash, buf, 0, buf.length, newHashScratch())).toBe(-1);
    expect(HASH_SUFFIX_LENGTH).toBe(75); // the literal firstHashMismatch holds (it is self-contained)
  });
});

describe("HashChecker", () => {
  /** Submits `lines` in pieces of `per` lines; returns the checker's first mismatch and whether the worker did all the work. */
  function check(lines: string[], per: number, checker: HashChecker) {
    for (let i = 0; i < lines.length; i += per) {
      const text = Buffer.from(lines.slice(i, i + per).join(""));
      const piece = checker.allocPiece(text.length);
      text.copy(piece);
      checker.submit(piece, 0, piece.length);
    }
    return { first: checker.finish(), ...checker.hashed };
  }
  const many = chain(400);
  const edited = (at: number) => many.map((l, i) => (i === at ? l.replace(`"n":${i}`, '"n":-1') : l));

  it.each<[string, string[], { piece: number; line: number } | undefined]>([
    ["an intact log", many, undefined],
    ["an edit in the first piece", edited(3), { piece: 0, line: 3 }],
    ["an edit in a middle piece", edited(257), { piece: 6, line: 17 }],
    ["an edit in the last line", edited(399), { piece: 9, line: 39 }],
  ])("reports the first mismatch of %s the same on this thread and on the worker", (_t, lines, expected) => {
    expect(check(lines, 40, new HashChecker(false))).toMatchObject({ first: expected, byWorker: 0 });
    const onWorker = check(lines, 40, new HashChecker(true));
    expect(onWorker.first).toEqual(expected);
    expect(onWorker.byWorker).toBeGreaterThan(0);
  });

  it("reports the earliest of several mismatches, whichever thread found them", () => {
    const twice = edited(50).map((l, i) => (i === 350 ? l.replace('"n":350', '"n":-2') : l));
    for (const per of [1, 7, 40, 400]) expect(check(twice, per, new HashChecker(true)).first).toEqual({ piece: Math.floor(50 / per), line: 50 % per });
  });

  it("hashes on the worker when it keeps up (one piece at a time)", () => {
    const checker = new HashChecker(true);
    expect(check(many, 400, checker)).toEqual({ first: undefined, byWorker: 1, here: 0 });
  });

  it("fails closed when the worker never answers: every piece it was given is hashed here after the timeout", () => {
    const silent = { source: "require('node:worker_threads').parentPort.on('message', () => {});", timeoutMs: 200 };
    expect(check(edited(250), 40, new HashChecker(true, silent))).toEqual({ first: { piece: 6, line: 10 }, byWorker: 0, here: 7 }); // pieces after the first mismatch are not hashed
    expect(check(many, 40, new HashChecker(true, silent))).toEqual({ first: undefined, byWorker: 0, here: 10 });
  });

  it("does not wait for a worker that says it failed (e.g. instrumented code it cannot run): hashed here at once", () => {
    const failing = { source: "const { parentPort, workerData } = require('node:worker_threads'); parentPort.on('message', () => { Atomics.store(workerData.state, 3, 1); Atomics.notify(workerData.state, 0); });", timeoutMs: 600_000 };
    const t0 = Date.now();
    expect(check(edited(250), 40, new HashChecker(true, failing))).toMatchObject({ first: { piece: 6, line: 10 }, byWorker: 0 });
    expect(Date.now() - t0).toBeLessThan(60_000); // far below the worker timeout: nothing waited for it
  });

  it("fails closed when the worker cannot start (its source throws)", () => {
    const broken = { source: "throw new Error('no worker today')", timeoutMs: 200 };
    expect(check(edited(5), 40, new HashChecker(true, broken))).toMatchObject({ first: { piece: 0, line: 5 }, byWorker: 0 });
  });
});
