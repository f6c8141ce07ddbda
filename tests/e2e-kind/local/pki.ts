/**
 * Certificates for the local control plane (DESIGN §7), made with the openssl CLI: a CA, the
 * apiserver's serving cert (127.0.0.1, localhost, kubernetes.default.svc), a system:masters client
 * cert for kubectl and the controllers, the service-account signing key, and a serving cert for the
 * kars webhook process. ECDSA P-256: fast to make, accepted by every component.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** Paths of the files `makePki` writes (PEM). */
export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  apiserverCert: string;
  apiserverKey: string;
  adminCert: string;
  adminKey: string;
  saKey: string;
  saPub: string;
  webhookCert: string;
  webhookKey: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

function ecKey(path: string, cwd: string): void {
  openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", path], cwd);
}

/**
 * Issues a leaf certificate signed by the CA in `dir`. `sans` are openssl subjectAltName entries
 * (e.g. `IP:127.0.0.1`, `DNS:localhost`). Throws when openssl fails (its stderr is in the error).
 */
export function issueCert(dir: string, name: string, subject: string, usage: "server" | "client", sans: string[] = []): { cert: string; key: string } {
  const key = `${name}.key`;
  const csr = `${name}.csr`;
  const cert = `${name}.crt`;
  const ext = `${name}.ext`;
  ecKey(key, dir);
  openssl(["req", "-new", "-key", key, "-subj", subject, "-out", csr], dir);
  const lines = [
    "basicConstraints=CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    `extendedKeyUsage=${usage === "server" ? "serverAuth" : "clientAuth"}`,
  ];
  if (sans.length) lines.push(`subjectAltName=${sans.join(",")}`);
  writeFileSync(join(dir, ext), lines.join("\n") + "\n");
  openssl(["x509", "-req", "-in", csr, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "30", "-sha256", "-extfile", ext, "-out", cert], dir);
  return { cert: join(dir, cert), key: join(dir, key) };
}

/** Creates every certificate and key of the local control plane in `dir`. */
export function makePki(dir: string, extraWebhookSans: string[] = []): Pki {
  mkdirSync(dir, { recursive: true });
  ecKey("ca.key", dir);
  openssl(["req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=kars-local-ca", "-days", "30", "-sha256", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca.crt"], dir);
  const apiserver = issueCert(dir, "apiserver", "/CN=kube-apiserver", "server", [
    "IP:127.0.0.1", "DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc", "IP:10.0.0.1",
  ]);
  const admin = issueCert(dir, "admin", "/O=system:masters/CN=kars-admin", "client");
  const webhook = issueCert(dir, "webhook", "/CN=kars-webhook", "server", ["IP:127.0.0.1", "DNS:localhost", ...extraWebhookSans]);
  ecKey("sa.key", dir);
  openssl(["ec", "-in", "sa.key", "-pubout", "-out", "sa.pub"], dir);
  return {
    dir,
    caCert: join(dir, "ca.crt"),
    caKey: join(dir, "ca.key"),
    apiserverCert: apiserver.cert,
    apiserverKey: apiserver.key,
    adminCert: admin.cert,
    adminKey: admin.key,
    saKey: join(dir, "sa.key"),
    saPub: join(dir, "sa.pub"),
    webhookCert: webhook.cert,
    webhookKey: webhook.key,
  };
}

/** A kubeconfig (YAML) for `server` authenticating with the admin client cert, data inlined. */
export function adminKubeconfig(pki: Pki, server: string): string {
  const b64 = (p: string): string => readFileSync(p).toString("base64");
  return `apiVersion: v1
kind: Config
clusters:
- name: kars-local
  cluster:
    server: ${server}
    certificate-authority-data: ${b64(pki.caCert)}
users:
- name: kars-admin
  user:
    client-certificate-data: ${b64(pki.adminCert)}
    client-key-data: ${b64(pki.adminKey)}
contexts:
- name: kars-local
  context:
    cluster: kars-local
    user: kars-admin
current-context: kars-local
`;
}
