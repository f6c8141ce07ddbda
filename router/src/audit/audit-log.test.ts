import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { AUDIT_FILE, AuditLog, auditChainProblem, type AuditEvent } from "./audit-log";

const ev = (n: number): AuditEvent => ({ kind: "inference", sandbox: "s", tenant: "t", api: "chat", model: "m", upstream: "m", decision: "allowed", code: null, reservedTokens: n, usedTokens: n, status: 200 });

describe("AuditLog", () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "kars-audit-"))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function writeLines(): string[] {
    const a = AuditLog.open(dir, () => 0);
    a.record(ev(1));
    a.record(ev(2));
    a.close();
    const b = AuditLog.open(dir, () => 0); // continues the chain after a restart
    b.record(ev(3));
    b.close();
    return fs.readFileSync(path.join(dir, AUDIT_FILE), "utf8").trim().split("\n");
  }

  it("chains records across restarts", () => {
    expect(auditChainProblem(writeLines().join("\n"))).toBeNull();
  });

  it.each<[string, (l: string[]) => string[], RegExp]>([
    ["an edit", l => [l[0], l[1].replace('"usedTokens":2', '"usedTokens":0'), l[2]], /line 2: hash mismatch/],
    ["a deletion", l => [l[0], l[2]], /line 2: seq 2, expected 1/],
    ["a reorder", l => [l[1], l[0], l[2]], /line 1: seq 1, expected 0/],
  ])("detects %s", (_t, tamper, problem) => {
    expect(auditChainProblem(tamper(writeLines()).join("\n"))).toMatch(problem);
  });
});
