import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { AUDIT_DIR, AUDIT_FILE, AuditLog } from "../router/src/audit/audit-log";
import { loadOrCreateSigningKey, PUBLIC_KEY_FILE } from "../router/src/audit/checkpoint";
import { main } from "./audit-command";

describe("kars audit verify", () => {
  let state: string;
  let out: string[];
  beforeEach(() => {
    state = fs.mkdtempSync(path.join(os.tmpdir(), "kars-audit-cli-"));
    out = [];
    jest.spyOn(console, "log").mockImplementation((m: string) => void out.push(m));
    jest.spyOn(console, "error").mockImplementation((m: string) => void out.push(m));
    const { privateKey } = loadOrCreateSigningKey(null, state);
    const log = AuditLog.open(state, { signingKey: privateKey, now: () => 0 });
    for (let i = 0; i < 3; i++) log.record({ kind: "inference", sandbox: "s", tenant: "t", api: "chat", model: "m", upstream: "m", decision: "allowed", code: null, reservedTokens: i, usedTokens: i, status: 200 });
    log.close();
  });
  afterEach(() => {
    jest.restoreAllMocks();
    fs.rmSync(state, { recursive: true, force: true });
  });

  it("exits 0 with a summary when intact", async () => {
    expect(await main(["verify", path.join(state, AUDIT_DIR), "--pubkey", path.join(state, PUBLIC_KEY_FILE)])).toBe(0);
    expect(out).toEqual(["audit log intact: 3 records, 1 signed checkpoints, last at record 2"]);
  });

  it("exits 1 naming the first bad record", async () => {
    const file = path.join(state, AUDIT_DIR, AUDIT_FILE);
    fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace('"usedTokens":1', '"usedTokens":7'));
    expect(await main(["verify", path.join(state, AUDIT_DIR), "--pubkey", path.join(state, PUBLIC_KEY_FILE)])).toBe(1);
    expect(out).toEqual(["audit log NOT intact: audit.jsonl line 2: hash mismatch (record edited)"]);
  });

  it("exits 2 on bad arguments", async () => {
    expect(await main(["verify", state])).toBe(2);
  });
});
