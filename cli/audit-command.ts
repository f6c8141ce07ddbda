/**
 * `kars audit verify DIR --pubkey FILE` (DESIGN §0): verifies a router's audit directory
 * (`<state-dir>/audit`: rotated parts, audit.jsonl and checkpoints.jsonl) against the router's Ed25519 public key
 * (`<state-dir>/audit-signing-key.pub.pem`). Exit 0 with a summary when intact; exit 1 naming the first
 * bad record and why; exit 2 for bad arguments.
 */
import { createPublicKey } from "node:crypto";
import * as fs from "node:fs";
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
  if (verb !== "verify" || !dir || !pubkey) {
    console.error(usage);
    return 2;
  }
  let verdict;
  try {
    verdict = verifyAuditDir(dir, createPublicKey(fs.readFileSync(pubkey)));
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
