/**
 * `kars audit verify DIR --pubkey FILE` (DESIGN §0): verifies a router's audit directory
 * (`<state-dir>/audit`: rotated parts, audit.jsonl and checkpoints.jsonl) against the router's Ed25519 public key
 * (`<state-dir>/audit-signing-key.pub.pem`). Exit 0 with a summary when intact; exit 1 naming the first
 * bad record and why; exit 2 for bad arguments (a missing or unusable key, a state directory given for its
 * audit directory), each named.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { AUDIT_DIR, AUDIT_FILE } from "../router/src/audit/audit-log";
import { PUBLIC_KEY_FILE } from "../router/src/audit/checkpoint";
import { verifyAuditDir } from "../router/src/audit/verify-audit";

const usage = "usage: kars audit verify DIR --pubkey FILE";

export async function main(args: string[]): Promise<number> {
  const [verb, dir, ...rest] = args;
  let pubkey: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === "--pubkey") pubkey = rest[++i];
    else if (rest[i].startsWith("--pubkey=")) pubkey = rest[i].slice("--pubkey=".length);
    else {
      console.error(`unknown argument ${rest[i]}\n${usage}`);
      return 2;
    }
  }
  if (verb !== "verify" || !dir) {
    console.error(usage);
    return 2;
  }
  if (!pubkey) {
    console.error(`kars audit verify: --pubkey FILE is required (the router writes it as <state-dir>/${PUBLIC_KEY_FILE})\n${usage}`);
    return 2;
  }
  if (!fs.existsSync(path.join(dir, AUDIT_FILE)) && fs.existsSync(path.join(dir, AUDIT_DIR, AUDIT_FILE))) {
    console.error(`kars audit verify: ${dir} is a router state directory; its audit log is ${path.join(dir, AUDIT_DIR)}`);
    return 2;
  }
  let key: KeyObject;
  try {
    key = createPublicKey(fs.readFileSync(pubkey));
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : "not a PEM or DER public key";
    console.error(`kars audit verify: ${pubkey}: ${why}`);
    return 2;
  }
  if (key.asymmetricKeyType !== "ed25519") {
    console.error(`kars audit verify: ${pubkey}: a ${key.asymmetricKeyType ?? "non-asymmetric"} key; audit checkpoints are signed with Ed25519 (${PUBLIC_KEY_FILE})`);
    return 2;
  }
  let verdict;
  try {
    verdict = verifyAuditDir(dir, key);
  } catch (err) {
    console.error(`kars audit verify: ${(err as Error).message}`);
    return 1;
  }
  if (!verdict.ok) {
    console.log(`audit log NOT intact: ${verdict.problem}`);
    return 1;
  }
  console.log(
    `audit log intact: ${verdict.records} records` +
      (verdict.firstSeq > 0 ? ` (records ${verdict.firstSeq} on; earlier ones rotated out)` : "") +
      `, ${verdict.checkpoints} signed checkpoints` +
      (verdict.lastCheckpointSeq === null ? "" : `, last at record ${verdict.lastCheckpointSeq}`) +
      (verdict.unsealedRecords > 0 ? `, ${verdict.unsealedRecords} records after the last checkpoint` : ""),
  );
  return 0;
}
