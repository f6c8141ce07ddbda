import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { AUDIT_DIR, AUDIT_FILE, auditFiles, AuditLog, CHECKPOINT_FILE, rotatedFirstSeq, type AuditEvent, type AuditRecord } from "./audit-log";
import { loadOrCreateSigningKey, PUBLIC_KEY_FILE } from "./checkpoint";
import { verifyAuditDir, verifyAuditLog } from "./verify-audit";

const ev = (n: number): AuditEvent => ({ kind: "inference", sandbox: "s", tenant: "t", api: "chat", model: "modèle-日本", upstream: "m", decision: "allowed", code: null, reservedTokens: n, usedTokens: n, status: 200 });
const keys = generateKeyPairSync("ed25519");

// the node:fs module object itself (this file's `fs` is a namespace copy whose properties cannot be spied on)
// eslint-disable-next-line @typescript-eslint/no-require-imports
const nodeFs = require("node:fs") as typeof fs;
const realWriteSync = nodeFs.writeSync;

describe("AuditLog", () => {
  let state: string;
  let dir: string;
  /** The fd of the open audit.jsonl (the only file the test log writes to besides checkpoints.jsonl, written through the same call). */
  const fdOf = (): number => fs.openSync(path.join(dir, AUDIT_FILE), "a");
  beforeEach(() => {
    state = fs.mkdtempSync(path.join(os.tmpdir(), "kars-audit-"));
    dir = path.join(state, AUDIT_DIR);
  });
  afterEach(() => fs.rmSync(state, { recursive: true, force: true }));

  /** Five records over two runs, a checkpoint every two records and on each close. */
  function writeLog(): { log: string[]; cps: string[] } {
    for (const range of [[1, 2, 3], [4, 5]]) {
      const a = AuditLog.open(state, { signingKey: keys.privateKey, now: () => 0, checkpointEvery: 2 });
      for (const n of range) {
        a.record(ev(n));
        a.flush();
        a.checkpoint();
      }
      a.close();
    }
    const read = (f: string) => fs.readFileSync(path.join(dir, f), "utf8").trim().split("\n");
    return { log: read(AUDIT_FILE), cps: read(CHECKPOINT_FILE) };
  }

  it.each<[string, number]>([
    ["the epoch", 0],
    ["a time with milliseconds", Date.UTC(2026, 10, 30, 23, 44, 44, 936)],
    ["a year past 9999 (ISO 8601 extended year)", Date.UTC(10000, 0, 1)],
  ])("writes each record's body exactly as JSON.stringify({seq, ts, prev, event}) would, at %s", (_t, ms) => {
    const a = AuditLog.open(state, { signingKey: null, now: () => ms });
    const events: AuditEvent[] = [ev(1), { ...ev(2), model: 'quote " backslash \\ newline \n tab \t \u2028 \ud800' } as AuditEvent, { kind: "egress", sandbox: "s", tenant: "t", via: "CONNECT", host: null, port: 443, decision: "refused", reason: "blocklist" }];
    for (const e of events) a.record(e);
    a.close();
    const lines = fs.readFileSync(path.join(dir, AUDIT_FILE), "utf8").trim().split("\n");
    lines.forEach((line, i) => {
      const r = JSON.parse(line) as AuditRecord;
      expect(line).toBe(`${JSON.stringify({ seq: r.seq, ts: new Date(ms).toISOString(), prev: r.prev, event: events[i] }).slice(0, -1)},"hash":"${r.hash}"}`);
    });
    expect(verifyAuditDir(dir, keys.publicKey)).toMatchObject({ ok: true, records: 3 });
  });

  it.each<[string, (bytes: Buffer) => never | number]>([
    ["a failed write (ENOSPC)", () => {
      throw Object.assign(new Error("no space left on device"), { code: "ENOSPC" });
    }],
    ["a short write that ends mid-character, then ENOSPC", (bytes) => {
      const n = bytes.indexOf("日") + 1; // inside the 3-byte UTF-8 character
      realWriteSync(fdOf(), bytes.subarray(0, n));
      return n;
    }],
  ])("after %s keeps the records byte-exact, refuses new ones while unhealthy, and writes them all once it can", (_t, fail) => {
    const a = AuditLog.open(state, { signingKey: keys.privateKey, now: () => 0 });
    a.record(ev(1));
    a.flush();
    a.record(ev(2));
    a.record(ev(3));
    let calls = 0;
    const spy = jest.spyOn(nodeFs, "writeSync").mockImplementation(((fd: number, bytes: Buffer, offset?: number) => {
      calls++;
      if (calls === 1) return fail(bytes.subarray(offset ?? 0));
      throw Object.assign(new Error("no space left on device"), { code: "ENOSPC" });
    }) as typeof fs.writeSync);
    expect(() => a.flush()).toThrow(/no space left/);
    expect(a.healthy()).toBe(false);
    expect(() => a.record(ev(4))).toThrow(/no space left/); // nothing more accepted: callers fail closed
    spy.mockRestore();
    expect(a.healthy()).toBe(false);
    a.record(ev(5)); // the kept records go first, then this one
    expect(a.healthy()).toBe(true);
    a.close();
    const records = fs.readFileSync(path.join(dir, AUDIT_FILE), "utf8").trim().split("\n").map(l => JSON.parse(l) as AuditRecord);
    expect(records.map(r => r.event.kind === "inference" && r.event.reservedTokens)).toEqual([1, 2, 3, 5]);
    expect(verifyAuditDir(dir, keys.publicKey)).toMatchObject({ ok: true, records: 4 });
  });

  it("a write failing in the flush timer neither throws from the timer nor loses the records", async () => {
    const a = AuditLog.open(state, { signingKey: keys.privateKey, now: () => 0 });
    const spy = jest.spyOn(nodeFs, "writeSync").mockImplementation((() => {
      throw Object.assign(new Error("no space left on device"), { code: "ENOSPC" });
    }) as typeof fs.writeSync);
    a.record(ev(1));
    await new Promise(r => setTimeout(r, 60)); // the group-commit timer has run, and failed
    expect(a.healthy()).toBe(false);
    spy.mockRestore();
    a.close();
    expect(verifyAuditDir(dir, keys.publicKey)).toMatchObject({ ok: true, records: 1 });
  });

  it("chains records across restarts and signs checkpoints that verify", () => {
    const { log, cps } = writeLog();
    expect(verifyAuditLog(log.join("\n"), cps.join("\n"), keys.publicKey)).toEqual({ ok: true, firstSeq: 0, records: 5, checkpoints: 5, lastCheckpointSeq: 4, unsealedRecords: 0 });
  });

  it.each<[string, (l: string[], c: string[]) => [string[], string[]], RegExp]>([
    ["an edit", (l, c) => [[l[0], l[1].replace('"usedTokens":2', '"usedTokens":0'), ...l.slice(2)], c], /audit\.jsonl line 2: hash mismatch/],
    ["a deletion", (l, c) => [[l[0], ...l.slice(2)], c], /audit\.jsonl line 2: seq 2, expected 1/],
    ["a reorder", (l, c) => [[l[1], l[0], ...l.slice(2)], c], /audit\.jsonl line 1: seq 1, expected 0/],
    ["a truncation before the last checkpoint", (l, c) => [l.slice(0, 3), c], /checkpoints\.jsonl line 4: vouches for record 3 but the log ends at 2 \(log truncated\)/],
    ["a forged checkpoint", (l, c) => [l, [...c.slice(0, 4), c[4].replace(/"sig":"[^"]+"/, '"sig":"AAAA"')]], /checkpoints\.jsonl line 5: signature does not verify/],
  ])("detects %s", (_t, tamper, problem) => {
    const { log, cps } = writeLog();
    const [l, c] = tamper(log, cps);
    const v = verifyAuditLog(l.join("\n"), c.join("\n"), keys.publicKey);
    expect(v.ok ? "intact" : v.problem).toMatch(problem);
  });

  it.each<[string, (l: string[]) => string[], RegExp | null]>([
    ["an intact log", (l) => l, null],
    ["an edit", (l) => [l[0], l[1].replace('"usedTokens":2', '"usedTokens":0'), ...l.slice(2)], /audit\.jsonl line 2: hash mismatch/],
    ["a deletion", (l) => [l[0], ...l.slice(2)], /audit\.jsonl line 2: seq 2, expected 1/],
    ["a truncation", (l) => l.slice(0, 3), /checkpoints\.jsonl line 4: vouches for record 3 but the log ends at 2/],
    ["a torn last line", (l) => [...l, '{"seq":5,"ts":"19'], /audit\.jsonl line 6: not an audit record/],
    ["an edit then a deletion (the hash problem, on the hashing thread, comes first)", (l) => [l[0], l[1].replace('"usedTokens":2', '"usedTokens":0'), l[2], l[4]], /audit\.jsonl line 2: hash mismatch/],
    ["a deletion then an edit (the chain problem comes first)", (l) => [l[0], l[2], l[3].replace('"usedTokens":4', '"usedTokens":0'), l[4]], /audit\.jsonl line 2: seq 2, expected 1/],
    ["an edit and a torn line on the same line", (l) => [l[0], l[1].replace('"usedTokens":2', '"usedTokens":0').slice(0, -3)], /audit\.jsonl line 2: not an audit record/],
  ])("reads the log in small pieces (lines and UTF-8 split between them) and still finds %s, with hashes checked on this thread and on a worker", (_t, tamper, problem) => {
    const { log } = writeLog();
    fs.writeFileSync(path.join(dir, AUDIT_FILE), `${tamper(log).join("\n")}\n`);
    for (const worker of [false, true]) {
      const v = verifyAuditDir(dir, keys.publicKey, 7, { worker });
      if (problem === null) expect(v).toEqual({ ok: true, firstSeq: 0, records: 5, checkpoints: 5, lastCheckpointSeq: 4, unsealedRecords: 0 });
      else expect(v.ok ? "intact" : v.problem).toMatch(problem);
    }
  });

  it("refuses a line longer than the limit unread, and never takes what follows it as checked", () => {
    const { log } = writeLog();
    // a line whose first bytes are a whole record (record 5, chained to record 4), then junk past the
    // limit, then an edit of a sealed record: the verdict must not depend on where a read cuts the line
    const forged = `${log[4].replace('"seq":4', '"seq":5')}${"x".repeat(2000)}`;
    const edited = log[2].replace('"usedTokens":3', '"usedTokens":0');
    fs.writeFileSync(path.join(dir, AUDIT_FILE), `${[...log, forged, edited].join("\n")}\n`);
    for (const pieceBytes of [7, 100, 999, 1000, 1001, 8 * 1024 * 1024]) {
      for (const worker of [false, true]) {
        const v = verifyAuditDir(dir, keys.publicKey, pieceBytes, { worker, maxLineBytes: 1000 });
        // whole in one read it is simply not a record; cut by reads, it is refused before its end is read
        expect(v.ok ? "intact" : v.problem).toBe(pieceBytes >= 4096 ? "audit.jsonl line 6: not an audit record" : "audit.jsonl line 6: longer than 1000 bytes (not an audit record)");
      }
    }
  });

  it("takes `,\"prev\":\"` inside a record's ts for its prev, as the first one in the line (the fast path finds only the writer's layout)", () => {
    const { log } = writeLog();
    const twoPrevs = log[1].replace(/"ts":"[^"]*"/, '"ts":"a,\"prev\":\"0123456789abc"');
    fs.writeFileSync(path.join(dir, AUDIT_FILE), `${[log[0], twoPrevs, ...log.slice(2)].join("\n")}\n`);
    for (const worker of [false, true]) {
      const v = verifyAuditDir(dir, keys.publicKey, 8 * 1024 * 1024, { worker });
      expect(v.ok ? "intact" : v.problem).toMatch(/audit\.jsonl line 2: (not an audit record|prev does not match)/);
    }
  });

  it.each<[string, string, RegExp]>([
    ["a seq with a leading zero", '{"seq":01,', /line 2: seq 01, expected 1/],
    ["a seq without digits", '{"seq":,', /line 2: not an audit record/],
    ["a negative seq", '{"seq":-1,', /line 2: not an audit record/],
    ["a seq of 16 digits", '{"seq":1000000000000001,', /line 2: seq 1000000000000001, expected 1/],
  ])("refuses %s", (_t, head, problem) => {
    const { log } = writeLog();
    fs.writeFileSync(path.join(dir, AUDIT_FILE), `${[log[0], log[1].replace('{"seq":1,', head), ...log.slice(2)].join("\n")}\n`);
    const v = verifyAuditDir(dir, keys.publicKey);
    expect(v.ok ? "intact" : v.problem).toMatch(problem);
  });

  it("checks the bytes as written: a U+FFFD in a record replaced by an invalid UTF-8 byte (which a text decoder would read back as U+FFFD) is an edit", () => {
    const a = AuditLog.open(state, { signingKey: keys.privateKey, now: () => 0 });
    a.record({ ...ev(1), model: "odd\uFFFDname" } as AuditEvent);
    a.record(ev(2));
    a.close();
    const file = path.join(dir, AUDIT_FILE);
    expect(verifyAuditDir(dir, keys.publicKey)).toMatchObject({ ok: true, records: 2 });
    const bytes = fs.readFileSync(file);
    const at = bytes.indexOf(Buffer.from("\uFFFD", "utf8"));
    fs.writeFileSync(file, Buffer.concat([bytes.subarray(0, at), Buffer.from([0xff]), bytes.subarray(at + 3)]));
    expect(fs.readFileSync(file, "utf8")).toContain("odd\uFFFDname"); // the same text, decoded
    const v = verifyAuditDir(dir, keys.publicKey);
    expect(v.ok ? "intact" : v.problem).toMatch(/audit\.jsonl line 1: bytes that are not UTF-8 \(record edited\)/);
  });

  it("seals every checkpointEvery records in the background (fdatasync off the event loop), and the log verifies", async () => {
    const a = AuditLog.open(state, { signingKey: keys.privateKey, now: () => 0, checkpointEvery: 10 });
    for (let n = 0; n < 25; n++) a.record(ev(n));
    const cpFile = path.join(dir, CHECKPOINT_FILE);
    const checkpoints = (): { seq: number }[] => (fs.existsSync(cpFile) ? fs.readFileSync(cpFile, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as { seq: number }) : []);
    // nothing is sealed synchronously by record(): the flush timer starts the background checkpoint
    expect(checkpoints()).toEqual([]);
    for (let waited = 0; checkpoints().length === 0 && waited < 5000; waited += 10) await new Promise((r) => setTimeout(r, 10));
    expect(checkpoints()[0].seq).toBe(24);
    // unsealed records since then are reported as such, and the chain verifies
    expect(verifyAuditDir(dir, keys.publicKey)).toEqual({ ok: true, firstSeq: 0, records: 25, checkpoints: 1, lastCheckpointSeq: 24, unsealedRecords: 0 });
    a.close();
  });

  it("closing while a background checkpoint is syncing writes checkpoints in order and verifies", async () => {
    const a = AuditLog.open(state, { signingKey: keys.privateKey, now: () => 0, checkpointEvery: 10 });
    for (let n = 0; n < 12; n++) a.record(ev(n));
    await new Promise((r) => setTimeout(r, 25)); // the flush timer fires and starts the background sync
    for (let n = 12; n < 15; n++) a.record(ev(n));
    a.close(); // seals 14 synchronously; the background callback (for 11) must not write after it
    await new Promise((r) => setTimeout(r, 100));
    const v = verifyAuditDir(dir, keys.publicKey);
    expect(v).toMatchObject({ ok: true, records: 15, lastCheckpointSeq: 14, unsealedRecords: 0 });
  });

  describe("rotation", () => {
    /** 60 records, flushed one by one, into parts of ~1 KiB, keeping `keep` rotated parts. */
    function rotatedLog(keep: number): string[] {
      const a = AuditLog.open(state, { signingKey: keys.privateKey, now: () => 0, maxFileBytes: 1024, keepRotated: keep });
      for (let n = 0; n < 60; n++) {
        a.record(ev(n));
        a.flush();
      }
      a.close();
      return auditFiles(dir);
    }

    it("rotates audit.jsonl into parts named after their first record, keeps the newest, and the rest verifies from there", () => {
      const files = rotatedLog(2);
      expect(files).toHaveLength(3);
      expect(files[2]).toBe(AUDIT_FILE);
      const firstKept = rotatedFirstSeq(files[0]) as number;
      expect(firstKept).toBeGreaterThan(0);
      const v = verifyAuditDir(dir, keys.publicKey);
      expect(v).toMatchObject({ ok: true, firstSeq: firstKept, records: 60 - firstKept, unsealedRecords: 0 });
    });

    it("continues the chain after a restart right after a rotation (audit.jsonl still empty)", () => {
      rotatedLog(2);
      fs.writeFileSync(path.join(dir, AUDIT_FILE), ""); // as if the process died right after the rename
      const a = AuditLog.open(state, { signingKey: keys.privateKey, now: () => 0, maxFileBytes: 1024, keepRotated: 2 });
      a.record(ev(60));
      a.close();
      expect(verifyAuditDir(dir, keys.publicKey)).toMatchObject({ ok: true, unsealedRecords: 0 });
    });

    it.each<[string, (files: string[]) => void, RegExp]>([
      [
        "records deleted from the head of the oldest part",
        (files) => {
          const f = path.join(dir, files[0]);
          fs.writeFileSync(f, fs.readFileSync(f, "utf8").split("\n").slice(1).join("\n"));
        },
        /audit-\d{12}\.jsonl line 1: starts with record \d+, but its name says \d+ \(records deleted\)/,
      ],
      ["a whole middle part deleted", (files) => fs.rmSync(path.join(dir, files[1])), /line 1: seq \d+, expected \d+ \(record deleted or reordered\)/],
      [
        "every rotated part deleted (rotation always keeps at least the newest)",
        (files) => {
          const a = AuditLog.open(state, { signingKey: keys.privateKey, now: () => 0, maxFileBytes: 1024, keepRotated: 3 });
          a.record(ev(60));
          a.close();
          for (const f of files.slice(0, -1)) fs.rmSync(path.join(dir, f));
        },
        /audit\.jsonl line 1: seq \d+, expected 0 \(only a rotated part may start after record 0/,
      ],
    ])("detects %s", (_t, tamper, problem) => {
      tamper(rotatedLog(3));
      const v = verifyAuditDir(dir, keys.publicKey);
      expect(v.ok ? "intact" : v.problem).toMatch(problem);
    });

    it("refuses to keep no rotated part (the verifier needs the newest to anchor audit.jsonl)", () => {
      expect(() => AuditLog.open(state, { signingKey: keys.privateKey, keepRotated: 0 })).toThrow(/keepRotated must be at least 1/);
    });

    it("takes the oldest part gone (what rotation does) as a later start, anchored by its checkpoint", () => {
      const files = rotatedLog(3);
      fs.rmSync(path.join(dir, files[0]));
      expect(verifyAuditDir(dir, keys.publicKey)).toMatchObject({ ok: true, firstSeq: rotatedFirstSeq(files[1]) });
    });
  });

  it("a chain rebuilt from scratch without the key fails at the first checkpoint", () => {
    writeLog();
    const other = generateKeyPairSync("ed25519");
    const v = verifyAuditDir(dir, other.publicKey);
    expect(v.ok ? "intact" : v.problem).toMatch(/checkpoints\.jsonl line 1: signature does not verify/);
  });

  it("cuts a torn last line on open and continues the chain", () => {
    writeLog();
    fs.appendFileSync(path.join(dir, AUDIT_FILE), '{"seq":5,"ts":"1970');
    const a = AuditLog.open(state, { signingKey: keys.privateKey, now: () => 0 });
    a.record(ev(6));
    a.close();
    const v = verifyAuditDir(dir, keys.publicKey);
    expect(v).toMatchObject({ ok: true, records: 6, unsealedRecords: 0 });
  });

  it("generates a signing key once, keeps it private, and publishes the public key", () => {
    const a = loadOrCreateSigningKey(null, state);
    const b = loadOrCreateSigningKey(null, state);
    expect(b.publicKeyPem).toBe(a.publicKeyPem);
    expect(fs.readFileSync(path.join(state, PUBLIC_KEY_FILE), "utf8")).toBe(a.publicKeyPem);
    expect(fs.statSync(path.join(state, "audit-signing-key.pem")).mode & 0o077).toBe(0);
  });
});
