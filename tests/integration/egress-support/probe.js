// Small network probe run as the "agent" (UID 1000) or "router" (UID 1001) inside the test network
// namespaces, by Node 24 directly (plain JS: starts fast, no loader). Prints one JSON line.
//   probe.js tcp HOST PORT                 -> {"ok":true} when a TCP connection opens within 1.5 s
//   probe.js dns SERVER NAME               -> {"ok":true,"addresses":[...]} (A and AAAA via SERVER)
//   probe.js connect PROXY AUTHORITY [SNI] -> sends "CONNECT AUTHORITY", reports status and
//                                             X-Kars-Egress-Reason; with SNI, then runs a TLS handshake
//                                             with that server name through the tunnel and a GET /.
//   probe.js raw PROXY TEXT               -> sends TEXT (JSON-string-escaped) and reports the status line
//   probe.js hold PROXY AUTHORITY N        -> opens N tunnels, keeping each open; reports the statuses
//   probe.js wait-close PROXY AUTHORITY MS -> opens a tunnel; reports whether the proxy closes it in MS
//   probe.js metrics HOST:PORT             -> {"ok":true,"active":N,"sockets":N,"echAllowed":N} from the proxy's metrics
//   probe.js script TARGET STEP...         -> one connection to TARGET (host:port; the proxy, or any
//                                             address for a redirected connection), half-open capable,
//                                             driven step by step (a hostile client):
//       w:JSON            write the JSON-string-escaped text
//       connect:AUTH      write a CONNECT head for AUTH
//       get:URL           write an absolute-form GET for URL (keep-alive)
//       hello:SNI[:N]     write a TLS ClientHello naming SNI (only its first N bytes with N)
//       ech-hello:SNI     write a TLS ClientHello naming SNI with an encrypted_client_hello extension
//                         (0xfe0d, opaque bytes: an outer ClientHello hiding its real name)
//       status            wait (up to 3 s) for a response head; its status joins "statuses"
//       sleep:MS          wait
//       pause             stop reading (backpressure)
//       fin               half-close (shutdown(2) of the write side)
//       rst               reset the connection and stop
//       mark              print MARK and the result so far (the test acts while the client holds on)
//       closed:MS         wait up to MS for the proxy to close (or half-close) the connection
//       until:JSON        wait (up to 3 s) for the text to arrive after the last response head: "found" or
//                         "missing" joins "statuses"
//       heads             add the last response head's text to "heads"
//     -> {"ok":true,"statuses":[...],"received":BYTES,"ended":BOOL,"closed":BOOL}
"use strict";
const net = require("node:net");
const tls = require("node:tls");
const dns = require("node:dns");

const [cmd, a, b, c] = process.argv.slice(2);
const out = (o) => {
  process.stdout.write(JSON.stringify(o) + "\n");
  process.exit(0);
};
setTimeout(() => out({ ok: false, error: "probe timeout" }), cmd === "script" ? 20000 : 8000).unref();

function splitHostPort(hp) {
  const i = hp.lastIndexOf(":");
  return { host: hp.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(hp.slice(i + 1)) };
}

function readHead(socket, cb) {
  let buf = Buffer.alloc(0);
  const onData = (d) => {
    buf = Buffer.concat([buf, d]);
    const end = buf.indexOf("\r\n\r\n");
    if (end >= 0) {
      socket.off("data", onData);
      const head = buf.subarray(0, end).toString("latin1");
      const rest = buf.subarray(end + 4);
      const status = Number(head.split(" ")[1]);
      const m = /\r\nx-kars-egress-reason: *([^\r]*)/i.exec(head);
      cb(status, m ? m[1] : undefined, rest);
    }
  };
  socket.on("data", onData);
}

if (cmd === "tcp") {
  const s = net.connect({ host: a, port: Number(b) });
  s.setTimeout(1500, () => out({ ok: false, error: "timeout" }));
  s.on("connect", () => out({ ok: true }));
  s.on("error", (e) => out({ ok: false, error: e.code }));
} else if (cmd === "dns") {
  const r = new dns.promises.Resolver({ timeout: 1500, tries: 1 });
  r.setServers([a]);
  Promise.allSettled([r.resolve4(b), r.resolve6(b)]).then(([v4, v6]) => {
    const addresses = [...(v4.value || []), ...(v6.value || [])];
    if (addresses.length > 0) out({ ok: true, addresses });
    out({ ok: false, error: (v4.reason || v6.reason || {}).code });
  });
} else if (cmd === "connect" || cmd === "raw") {
  const proxy = splitHostPort(a);
  const s = net.connect(proxy);
  s.on("error", (e) => out({ ok: false, error: e.code }));
  s.on("close", () => out({ ok: false, error: "closed" }));
  s.on("connect", () => {
    s.write(cmd === "raw" ? JSON.parse(b) : `CONNECT ${b} HTTP/1.1\r\nHost: ${b}\r\n\r\n`);
  });
  readHead(s, (status, reason) => {
    if (cmd === "raw" || status !== 200 || c === undefined) out({ ok: status === 200, status, reason });
    s.removeAllListeners("close");
    const t = tls.connect({ socket: s, servername: c === "-" ? undefined : c, rejectUnauthorized: false });
    t.on("error", (e) => out({ ok: false, status, tls: "error", error: e.code || e.message }));
    t.on("close", () => out({ ok: false, status, tls: "closed" }));
    t.on("secureConnect", () => {
      t.write(`GET / HTTP/1.1\r\nHost: ${c}\r\nConnection: close\r\n\r\n`);
      let body = "";
      t.on("data", (d) => (body += d));
      t.removeAllListeners("close");
      t.on("close", () => out({ ok: true, status, tls: "ok", body: body.split("\r\n\r\n")[1] }));
    });
  });
} else if (cmd === "hold") {
  // hold PROXY AUTHORITY N: opens N tunnels one after another, keeping the earlier ones open;
  // reports each CONNECT status (and reason on refusals).
  const proxy = splitHostPort(a);
  const statuses = [];
  const open = [];
  const next = () => {
    if (statuses.length === Number(c)) return out({ ok: true, statuses });
    const s = net.connect(proxy);
    open.push(s);
    s.on("error", () => undefined);
    s.on("connect", () => s.write(`CONNECT ${b} HTTP/1.1\r\nHost: ${b}\r\n\r\n`));
    readHead(s, (status, reason) => {
      statuses.push(reason ? `${status} ${reason}` : String(status));
      next();
    });
  };
  next();
} else if (cmd === "wait-close") {
  // wait-close PROXY AUTHORITY MS: opens a tunnel and reports whether the proxy closes it within MS.
  const proxy = splitHostPort(a);
  const s = net.connect(proxy);
  s.on("error", () => undefined);
  s.on("connect", () => s.write(`CONNECT ${b} HTTP/1.1\r\nHost: ${b}\r\n\r\n`));
  readHead(s, (status) => {
    const timer = setTimeout(() => out({ ok: true, status, closed: false }), Number(c));
    s.on("close", () => {
      clearTimeout(timer);
      out({ ok: true, status, closed: true });
    });
  });
} else if (cmd === "metrics") {
  // the proxy's own gauges: open tunnels and sockets it holds (run-proxy.ts serves them on loopback)
  const proxy = splitHostPort(a);
  const s = net.connect(proxy);
  let text = "";
  s.on("error", (e) => out({ ok: false, error: e.code }));
  s.on("connect", () => s.end("GET /metrics HTTP/1.0\r\n\r\n"));
  s.on("data", (d) => (text += d));
  s.on("end", () => {
    const gauge = (name) => Number((new RegExp(`^${name} (\\S+)$`, "m").exec(text) || [])[1]);
    out({ ok: true, active: gauge("kars_egress_active_tunnels"), sockets: gauge("kars_egress_open_sockets"), echAllowed: gauge("kars_egress_encrypted_client_hellos_allowed_total") });
  });
} else if (cmd === "script") {
  runScript(splitHostPort(a), process.argv.slice(4));
} else {
  out({ ok: false, error: `unknown command ${cmd}` });
}

/** A TLS 1.2-style ClientHello record with one server_name extension (RFC 8446 §4.1.2, RFC 6066 §3). */
function clientHello(sni, ech = false) {
  const name = Buffer.from(sni, "ascii");
  const u16 = (n) => [n >> 8, n & 0xff];
  const ext = [0, 0, ...u16(name.length + 5), ...u16(name.length + 3), 0, ...u16(name.length), ...name];
  if (ech) ext.push(0xfe, 0x0d, ...u16(48), ...new Array(48).fill(0xab));
  const body = [3, 3, ...new Array(32).fill(7), 0, ...u16(2), 0x13, 0x01, 1, 0, ...u16(ext.length), ...ext];
  const handshake = [1, 0, ...u16(body.length), ...body];
  return Buffer.from([0x16, 3, 1, ...u16(handshake.length), ...handshake]);
}

function runScript(target, steps) {
  const result = { ok: true, statuses: [], received: 0, ended: false, closed: false };
  let buf = Buffer.alloc(0);
  let skip = 0; // body bytes of the last answer still to drop
  let headWaiter = null;
  let lastHead = "";
  const s = net.connect({ ...target, allowHalfOpen: true });
  s.on("error", (e) => (result.error = e.code));
  s.on("data", (d) => {
    result.received += d.length;
    const dropped = Math.min(skip, d.length);
    skip -= dropped;
    buf = Buffer.concat([buf, d.subarray(dropped)]).subarray(-65536);
    if (headWaiter) headWaiter();
  });
  s.on("end", () => (result.ended = true));
  s.on("close", () => {
    result.closed = true;
    if (headWaiter) headWaiter();
  });
  const wait = (ms) => new Promise((r) => setTimeout(r, ms));
  const head = () =>
    new Promise((resolve) => {
      const timer = setTimeout(() => ((headWaiter = null), resolve("none")), 3000);
      headWaiter = () => {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0 && !result.closed) return;
        clearTimeout(timer);
        headWaiter = null;
        if (end < 0) return resolve("closed");
        const text = buf.subarray(0, end).toString("latin1");
        lastHead = text;
        buf = buf.subarray(end + 4);
        // drop the body (Content-Length), so that the next "status" reads the next answer's head
        const length = Number((/\r\ncontent-length: *(\d+)/i.exec(text) || [])[1] || 0);
        const inBuf = Math.min(length, buf.length);
        buf = buf.subarray(inBuf);
        skip = length - inBuf;
        const m = /\r\nx-kars-egress-reason: *([^\r]*)/i.exec(text);
        resolve(`${text.split(" ")[1]}${m ? ` ${m[1]}` : ""}`);
      };
      headWaiter();
    });
  s.once("connect", async () => {
    for (const step of steps) {
      const [op, ...rest] = step.split(":");
      const arg = rest.join(":");
      if (op === "w") s.write(JSON.parse(arg));
      else if (op === "connect") s.write(`CONNECT ${arg} HTTP/1.1\r\nHost: ${arg}\r\n\r\n`);
      else if (op === "get") s.write(`GET ${arg} HTTP/1.1\r\nHost: ${new URL(arg).host}\r\n\r\n`);
      else if (op === "hello") {
        const [sni, n] = arg.split(":");
        const hello = clientHello(sni);
        s.write(n === undefined ? hello : hello.subarray(0, Number(n)));
      } else if (op === "ech-hello") s.write(clientHello(arg, true));
      else if (op === "status") result.statuses.push(await head());
      else if (op === "sleep") await wait(Number(arg));
      else if (op === "pause") s.pause();
      else if (op === "fin") s.end();
      else if (op === "rst") {
        s.resetAndDestroy();
        await wait(50);
        return out(result);
      } else if (op === "until") {
        // wait (up to 3 s) for the text to arrive after the last response head; joins "statuses" as found/missing
        const text = JSON.parse(arg);
        for (let t = 0; t < 3000 && !buf.includes(text) && !result.closed; t += 20) await wait(20);
        result.statuses.push(buf.includes(text) ? "found" : "missing");
      } else if (op === "heads") result.heads = (result.heads || []).concat(lastHead);
      else if (op === "mark") process.stdout.write(`MARK ${JSON.stringify(result)}\n`);
      else if (op === "closed") {
        for (let t = 0; t < Number(arg) && !result.ended && !result.closed; t += 20) await wait(20);
      } else return out({ ok: false, error: `unknown step ${step}` });
    }
    out(result);
  });
}
