import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { BudgetLedger, type BudgetScope } from "./ledger";
import { BudgetJournal, JOURNAL_FILE, replay } from "./journal";

const now = Date.parse("2026-11-30T14:10:00Z");
const scope: BudgetScope = { key: "sandbox:s", limits: { hourlyTokens: 1000 }, exceededCode: "token_budget_exceeded" };
const H = "sandbox:s|hourly|2026-11-30T14";

describe("replay", () => {
  it.each<[string, string, number, number]>([
    ["a settled reservation counts its actual usage", '{"op":"reserve","id":"a","counters":["k"],"tokens":50}\n{"op":"settle","id":"a","tokens":20}\n', 20, 0],
    ["an unsettled reservation counts in full (it may have reached the upstream)", '{"op":"reserve","id":"a","counters":["k"],"tokens":50}\n', 50, 0],
    ["a compacted counter is the starting point", '{"op":"set","key":"k","tokens":7}\n{"op":"reserve","id":"a","counters":["k"],"tokens":3}\n', 10, 0],
    ["a torn last line is skipped and counted", '{"op":"reserve","id":"a","counters":["k"],"tokens":5}\n{"op":"sett', 5, 1],
  ])("%s", (_t, text, expected, skipped) => {
    const r = replay(text);
    expect(r.counters.get("k")).toBe(expected);
    expect(r.skipped).toBe(skipped);
  });

  it("lists the reservations never settled, and only those", () => {
    const text = [
      '{"op":"reserve","id":"a","counters":["k1","k2"],"tokens":50}',
      '{"op":"reserve","id":"b","counters":["k1"],"tokens":7}',
      '{"op":"settle","id":"a","tokens":20}',
      '{"op":"reserve","id":"c","counters":["k1"],"tokens":9}',
    ].join("\n");
    expect(replay(text).unsettled).toEqual([{ id: "b", counters: ["k1"], tokens: 7 }, { id: "c", counters: ["k1"], tokens: 9 }]);
  });
});

describe("BudgetJournal", () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "kars-journal-"))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("a reopened journal remembers settled and open spend, and compacts to one line per counter", () => {
    const a = BudgetJournal.open(dir, now);
    const ledger = new BudgetLedger(a.journal);
    ledger.settle(ledger.reserve([scope], 100, now), 40);
    ledger.reserve([scope], 30, now); // never settled: the process "dies"
    a.journal.close();

    const seen: unknown[] = [];
    const b = BudgetJournal.open(dir, now, 1000, unsettled => seen.push(...unsettled));
    expect(b.counters.get(H)).toBe(70);
    expect(seen).toEqual([expect.objectContaining({ tokens: 30, counters: expect.arrayContaining([H]) })]); // told before compaction
    expect(b.unsettled).toEqual(seen);
    const lines = fs.readFileSync(path.join(dir, JOURNAL_FILE), "utf8").trim().split("\n");
    expect(lines).toHaveLength(3); // hourly, daily, monthly
    b.journal.close();
  });

  it("a journal whose unsettled reservations cannot be handed over is left as it was", () => {
    const a = BudgetJournal.open(dir, now);
    new BudgetLedger(a.journal).reserve([scope], 30, now);
    a.journal.close();
    const before = fs.readFileSync(path.join(dir, JOURNAL_FILE), "utf8");
    expect(() => BudgetJournal.open(dir, now, 1000, () => { throw new Error("audit log full"); })).toThrow("audit log full");
    expect(fs.readFileSync(path.join(dir, JOURNAL_FILE), "utf8")).toBe(before);
    // and told again at the next start
    const again: unknown[] = [];
    BudgetJournal.open(dir, now, 1000, u => again.push(...u)).journal.close();
    expect(again).toHaveLength(1);
  });

  it("a settlement not yet written when the process dies leaves the full reservation charged (never less)", () => {
    const a = BudgetJournal.open(dir, now);
    const ledger = new BudgetLedger(a.journal);
    ledger.settle(ledger.reserve([scope], 100, now), 10); // settle is buffered until the end of the turn
    const text = fs.readFileSync(path.join(dir, JOURNAL_FILE), "utf8"); // what a kill -9 right now leaves
    expect(replay(text).counters.get(H)).toBe(100);
    a.journal.close();
    expect(replay(fs.readFileSync(path.join(dir, JOURNAL_FILE), "utf8")).counters.get(H)).toBe(10);
  });

  it("compacting in place keeps every counter and later records still apply", () => {
    const a = BudgetJournal.open(dir, now);
    const ledger = new BudgetLedger(a.journal);
    for (let i = 0; i < 50; i++) ledger.settle(ledger.reserve([scope], 10, now), 4);
    a.journal.flush();
    const before = a.journal.size();
    a.journal.compact(ledger.currentCounters(now));
    expect(a.journal.size()).toBeLessThan(before);
    ledger.settle(ledger.reserve([scope], 10, now), 6);
    a.journal.close();
    const b = BudgetJournal.open(dir, now);
    expect(b.counters.get(H)).toBe(50 * 4 + 6);
    b.journal.close();
  });

  it("a reservation open across a compaction is still found unsettled after a kill, and counted once", () => {
    const a = BudgetJournal.open(dir, now);
    const ledger = new BudgetLedger(a.journal);
    ledger.settle(ledger.reserve([scope], 100, now), 40);
    const open = ledger.reserve([scope], 500, now); // in flight across the compaction
    a.journal.compact(ledger.currentCounters(now));
    ledger.reserve([scope], 7, now); // in flight too, after it
    // killed here: no close, nothing settled
    const seen: { id: string; tokens: number }[] = [];
    const b = BudgetJournal.open(dir, now, 1000, u => seen.push(...u));
    expect(seen.map(r => [r.id, r.tokens])).toEqual([[open.id, 500], [expect.any(String), 7]]);
    expect(b.counters.get(H)).toBe(40 + 500 + 7);
    b.journal.close();
  });

  it("a reservation open across a compaction that then settles counts its usage once", () => {
    const a = BudgetJournal.open(dir, now);
    const ledger = new BudgetLedger(a.journal);
    const open = ledger.reserve([scope], 500, now);
    a.journal.compact(ledger.currentCounters(now));
    ledger.settle(open, 30);
    a.journal.close();
    const seen: unknown[] = [];
    const b = BudgetJournal.open(dir, now, 1000, u => seen.push(...u));
    expect(seen).toEqual([]);
    expect(b.counters.get(H)).toBe(30);
    b.journal.close();
  });

  it("drops windows that have ended when it reopens", () => {
    const a = BudgetJournal.open(dir, now);
    new BudgetLedger(a.journal).reserve([scope], 10, now);
    a.journal.close();
    const b = BudgetJournal.open(dir, Date.parse("2026-11-30T15:00:00Z"));
    expect(b.counters.has(H)).toBe(false);
    expect(b.counters.get("sandbox:s|daily|2026-11-30")).toBe(10);
    b.journal.close();
  });
});
