import { generateKeyPairSync } from "node:crypto";
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

  it.each<[string, (state: string) => string[], RegExp]>([
    ["no verb", (st) => [path.join(st, AUDIT_DIR)], /^usage: kars audit verify DIR --pubkey FILE$/],
    ["no --pubkey", (st) => ["verify", path.join(st, AUDIT_DIR)], /--pubkey FILE is required \(the router writes it as <state-dir>\/audit-signing-key\.pub\.pem\)/],
    ["an unknown argument", (st) => ["verify", path.join(st, AUDIT_DIR), "--key", "x"], /^unknown argument --key/],
    ["the state directory instead of its audit directory", (st) => ["verify", st, "--pubkey", path.join(st, PUBLIC_KEY_FILE)], /is a router state directory; its audit log is .*\/audit$/],
    ["a key file that does not exist", (st) => ["verify", path.join(st, AUDIT_DIR), "--pubkey", path.join(st, "nope.pem")], /nope\.pem: no such file$/],
    ["a key file that is not a key", (st) => ["verify", path.join(st, AUDIT_DIR), "--pubkey", path.join(st, AUDIT_DIR, AUDIT_FILE)], /audit\.jsonl: not a PEM or DER public key$/],
    ["a key of another type", (st) => {
      fs.writeFileSync(path.join(st, "p256.pem"), generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" }));
      return ["verify", path.join(st, AUDIT_DIR), "--pubkey", path.join(st, "p256.pem")];
    }, /p256\.pem: a ec key; audit checkpoints are signed with Ed25519/],
  ])("exits 2 naming the problem with the arguments: %s", async (_t, args, message) => {
    expect(await main(args(state))).toBe(2);
    expect(out.join("\n")).toMatch(message);
  });
});
