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
"use strict";
const net = require("node:net");
const tls = require("node:tls");
const dns = require("node:dns");

const [cmd, a, b, c] = process.argv.slice(2);
const out = (o) => {
  process.stdout.write(JSON.stringify(o) + "\n");
  process.exit(0);
};
setTimeout(() => out({ ok: false, error: "probe timeout" }), 8000).unref();

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
} else {
  out({ ok: false, error: `unknown command ${cmd}` });
}
