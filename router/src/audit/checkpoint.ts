import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

/** A signed statement that the audit chain had `hash` at record `seq` (DESIGN §6 "periodic Ed25519-signed checkpoints"). */
export interface AuditCheckpoint {
  seq: number;
  hash: string;
  ts: string;
  /** Ed25519 signature over checkpointBytes(), base64url. */
  sig: string;
}

/** Domain-separated bytes a checkpoint signature covers. */
export function checkpointBytes(c: Pick<AuditCheckpoint, "seq" | "hash" | "ts">): Buffer {
  return Buffer.from(`kars-audit-checkpoint.v1\n${c.seq}\n${c.hash}\n${c.ts}`, "utf8");
}

/** Signs a checkpoint with an Ed25519 private key. */
export function signCheckpoint(c: Pick<AuditCheckpoint, "seq" | "hash" | "ts">, key: KeyObject): AuditCheckpoint {
  return { ...c, sig: sign(null, checkpointBytes(c), key).toString("base64url") };
}

/** Whether a checkpoint's signature verifies under an Ed25519 public key. */
export function isCheckpointSigned(c: AuditCheckpoint, publicKey: KeyObject): boolean {
  try {
    return verify(null, checkpointBytes(c), publicKey, Buffer.from(c.sig, "base64url"));
  } catch {
    return false;
  }
}

export const SIGNING_KEY_FILE = "audit-signing-key.pem";
export const PUBLIC_KEY_FILE = "audit-signing-key.pub.pem";

/**
 * The router's audit signing key: `<configDir>/audit-signing-key.pem` (a projected Secret, PKCS#8 PEM)
 * when present, else `<stateDir>/audit-signing-key.pem`, generated (Ed25519, mode 0600) on first use.
 * The public key is written to `<stateDir>/audit-signing-key.pub.pem` for `kars audit verify --pubkey`.
 * Throws when a present key is not an Ed25519 private key.
 */
export function loadOrCreateSigningKey(configDir: string | null, stateDir: string): { privateKey: KeyObject; publicKeyPem: string } {
  const candidates = [configDir ? path.join(configDir, SIGNING_KEY_FILE) : null, path.join(stateDir, SIGNING_KEY_FILE)].filter((p): p is string => p !== null);
  let privateKey: KeyObject | null = null;
  for (const file of candidates) {
    if (!fs.existsSync(file)) continue;
    privateKey = createPrivateKey(fs.readFileSync(file));
    if (privateKey.asymmetricKeyType !== "ed25519") throw new Error(`${file}: expected an Ed25519 private key, found ${privateKey.asymmetricKeyType}`);
    break;
  }
  if (!privateKey) {
    fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const pair = generateKeyPairSync("ed25519");
    fs.writeFileSync(path.join(stateDir, SIGNING_KEY_FILE), pair.privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
    privateKey = pair.privateKey;
  }
  const publicKeyPem = createPublicKey(privateKey).export({ type: "spki", format: "pem" }).toString();
  fs.writeFileSync(path.join(stateDir, PUBLIC_KEY_FILE), publicKeyPem, { mode: 0o644 });
  return { privateKey, publicKeyPem };
}
