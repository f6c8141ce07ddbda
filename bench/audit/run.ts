/**
 * `npm run bench:audit` (DESIGN §8): the router's audit log (router/src/audit) — durable appends per
 * second (records recorded, then flushed and fsync'ed by close, on the state directory's filesystem)
 * against the naive durable baseline (write + fdatasync per record), and verification speed
 * (hash chain + signed checkpoints). Ends with one `BENCH audit …` line per target:
 *   ≥ 20k durable appends/s; verify ≥ 500k records/s.
 * Environment: BENCH_AUDIT_RECORDS (default 200000), BENCH_AUDIT_BASELINE_RECORDS (default 2000).
 */
import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { AUDIT_DIR, AuditLog, type AuditEvent } from "../../router/src/audit/audit-log";
import { verifyAuditDir } from "../../router/src/audit/verify-audit";

const N = Number(process.env.BENCH_AUDIT_RECORDS ?? 200_000);
const BASELINE_N = Number(process.env.BENCH_AUDIT_BASELINE_RECORDS ?? 2000);

const event = (i: number): AuditEvent => ({
  kind: "inference", sandbox: "bench", tenant: "bench", api: "chat", model: "gpt-4o", upstream: "gpt-4o",
  decision: i % 10 === 0 ? "refused" : "allowed", code: i % 10 === 0 ? "token_budget_exceeded" : null,
  reservedTokens: 4096, usedTokens: 100 + (i % 1000), status: i % 10 === 0 ? 429 : 200,
});

function fmt(n: number): string {
  return n >= 100 ? n.toFixed(0) : n.toFixed(2);
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kars-bench-audit-"));
  try {
    const keys = generateKeyPairSync("ed25519");
    // kars: group commit (record → one write per 20 ms, fdatasync at checkpoints and close)
    const log = AuditLog.open(dir, { signingKey: keys.privateKey });
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) {
      log.record(event(i));
      if (i % 5000 === 4999) await new Promise(r => setImmediate(r)); // let timers run, as a server would
    }
    log.close(); // flush + checkpoint + fsync: everything recorded is durable now
    const appendSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const appendsPerSecond = N / appendSeconds;

    // baseline: the same lines, each written and fdatasync'ed before the next (a naive durable log)
    const line = `${JSON.stringify({ seq: 0, ts: new Date().toISOString(), prev: "0".repeat(64), event: event(1), hash: "0".repeat(64) })}\n`;
    const fd = fs.openSync(path.join(dir, "baseline.jsonl"), "a");
    const b0 = process.hrtime.bigint();
    for (let i = 0; i < BASELINE_N; i++) {
      fs.writeSync(fd, line);
      fs.fdatasyncSync(fd);
    }
    const baselinePerSecond = BASELINE_N / (Number(process.hrtime.bigint() - b0) / 1e9);
    fs.closeSync(fd);

    const v0 = process.hrtime.bigint();
    const verdict = verifyAuditDir(path.join(dir, AUDIT_DIR), keys.publicKey);
    const verifySeconds = Number(process.hrtime.bigint() - v0) / 1e9;
    if (!verdict.ok || verdict.records !== N) throw new Error(`verification failed: ${JSON.stringify(verdict)}`);
    const verifyPerSecond = N / verifySeconds;
    const size = fs.statSync(path.join(dir, AUDIT_DIR, "audit.jsonl")).size;
    process.stderr.write(`bench:audit ${N} records, ${(size / 1048576).toFixed(1)} MiB, ${verdict.checkpoints} checkpoints; load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} cores\n`);
    console.log(`BENCH audit durable_appends_per_s=${fmt(appendsPerSecond)} baseline_fsync_each_per_s=${fmt(baselinePerSecond)} ratio=${fmt(appendsPerSecond / baselinePerSecond)} target>=20000 ${appendsPerSecond >= 20000 ? "pass" : "fail"}`);
    console.log(`BENCH audit verify_records_per_s=${fmt(verifyPerSecond)} target>=500000 ${verifyPerSecond >= 500000 ? "pass" : "fail"}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch(err => {
  console.error(`bench:audit failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
