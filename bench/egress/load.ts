/**
 * Load generator of `bench:egress`: CONCURRENCY workers, for SECONDS, each repeatedly opening a TCP
 * connection to the proxy, sending `CONNECT allowed.test:443`, waiting for the 200, sending a real
 * ClientHello (SNI allowed.test, so kars' domain-fronting check passes) and reading the upstream's
 * answer until it closes. One completed exchange = one tunnel. Prints one JSON line:
 * {tunnels, errors, rps, p50Ms, p99Ms}. Usage: load.ts PROXY_HOST PROXY_PORT SECONDS CONCURRENCY
 */
import { connect } from "node:net";
import { Duplex } from "node:stream";
import { connect as tlsConnect } from "node:tls";

const [host, port, seconds, concurrency] = process.argv.slice(2);

function clientHello(servername: string): Promise<Buffer> {
  return new Promise((resolve) => {
    const duplex = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        cb();
        resolve(Buffer.from(chunk));
        setImmediate(() => socket.destroy());
      },
    });
    const socket = tlsConnect({ socket: duplex, servername, rejectUnauthorized: false });
    socket.on("error", () => undefined);
  });
}

function tunnel(hello: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port: Number(port), noDelay: true });
    let phase = 0;
    let buf = "";
    let done = false;
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(10_000, () => finish(false));
    s.on("error", () => finish(false));
    s.on("connect", () => s.write("CONNECT allowed.test:443 HTTP/1.1\r\nHost: allowed.test:443\r\n\r\n"));
    s.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      if (phase === 0) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        if (!/^HTTP\/1\.[01] 200/.test(buf)) return finish(false);
        phase = 1;
        buf = buf.slice(end + 4);
        s.write(hello);
      }
      if (phase === 1 && buf.endsWith("ok")) finish(true);
    });
    s.on("close", () => finish(phase === 1 && buf.endsWith("ok")));
  });
}

async function main(): Promise<void> {
  const hello = await clientHello("allowed.test");
  const deadline = Date.now() + Number(seconds) * 1000;
  const latencies: number[] = [];
  let errors = 0;
  const worker = async (): Promise<void> => {
    while (Date.now() < deadline) {
      const t0 = process.hrtime.bigint();
      const ok = await tunnel(hello);
      if (ok) latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      else errors++;
    }
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: Number(concurrency) }, worker));
  const elapsed = (Date.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number): number => (latencies.length ? Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] * 100) / 100 : NaN);
  process.stdout.write(`${JSON.stringify({ tunnels: latencies.length, errors, rps: Math.round(latencies.length / elapsed), p50Ms: q(0.5), p99Ms: q(0.99) })}\n`);
}

void main();
