import fc from "fast-check";
import { Duplex } from "node:stream";
import { connect as tlsConnect } from "node:tls";
import { parseClientHello } from "./client-hello";

/** The first flight Node's own TLS client sends (a real ClientHello, TLS 1.3 + 1.2 offers). */
function realClientHello(servername?: string): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const duplex = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk);
        cb();
        resolve(Buffer.concat(chunks));
        setImmediate(() => socket.destroy());
      },
    });
    const socket = tlsConnect({ socket: duplex, servername, rejectUnauthorized: false });
    socket.on("error", () => undefined);
  });
}

const u16 = (n: number): number[] => [(n >> 8) & 255, n & 255];
const u24 = (n: number): number[] => [(n >> 16) & 255, (n >> 8) & 255, n & 255];

/** Builds a ClientHello handshake message from its parts (RFC 8446 §4.1.2). */
function clientHelloMessage(extensions: number[][], opts: { sessionId?: number; suites?: number } = {}): number[] {
  const ext = extensions.flat();
  const sessionId = opts.sessionId ?? 32;
  const body = [
    3, 3,
    ...new Array<number>(32).fill(7),
    sessionId, ...new Array<number>(Math.min(sessionId, 64)).fill(1),
    ...u16(opts.suites ?? 2), ...new Array<number>(opts.suites ?? 2).fill(0x13),
    1, 0,
    ...u16(ext.length), ...ext,
  ];
  return [1, ...u24(body.length), ...body];
}

function sniExtension(...names: [type: number, name: string][]): number[] {
  const entries = names.flatMap(([type, name]) => [type, ...u16(name.length), ...Buffer.from(name, "latin1")]);
  const list = [...u16(entries.length), ...entries];
  return [0, 0, ...u16(list.length), ...list];
}

/** Wraps a handshake message in records of at most `fragment` bytes each. */
function records(message: number[], fragment = 16384): Buffer {
  const out: number[] = [];
  for (let i = 0; i < message.length; i += fragment) {
    const part = message.slice(i, i + fragment);
    out.push(0x16, 3, 1, ...u16(part.length), ...part);
  }
  return Buffer.from(out);
}

describe("parseClientHello", () => {
  it("reads the SNI from a real ClientHello", async () => {
    const hello = await realClientHello("allowed.example");
    expect(parseClientHello(hello)).toEqual({ kind: "ok", serverName: "allowed.example", bytes: hello.length, encryptedClientHello: false });
  });

  it("reports no SNI when a real client sends none", async () => {
    const hello = await realClientHello(undefined);
    expect(parseClientHello(hello)).toMatchObject({ kind: "ok", serverName: null });
  });

  it("asks for more bytes at every truncation point of a real ClientHello", async () => {
    const hello = await realClientHello("allowed.example");
    for (let n = 0; n < hello.length; n++) expect(parseClientHello(hello.subarray(0, n))).toEqual({ kind: "incomplete" });
  });

  it("waits for the second byte when the first could start another TLS record", () => {
    expect(parseClientHello(Buffer.from([0x15]))).toEqual({ kind: "incomplete" });
  });

  it("reassembles a ClientHello fragmented across records (RFC 8446 §5.1)", () => {
    const message = clientHelloMessage([sniExtension([0, "frag.example"])]);
    for (const size of [1, 3, 4, 7, 50]) {
      expect(parseClientHello(records(message, size))).toMatchObject({ kind: "ok", serverName: "frag.example" });
    }
  });

  it.each([
    ["plain HTTP", Buffer.from("GET / HTTP/1.1\r\n\r\n"), { kind: "not_tls" }],
    ["an SSH banner", Buffer.from("SSH-2.0-OpenSSH\r\n"), { kind: "not_tls" }],
    ["an alert record first (a warning alert some servers skip)", Buffer.from([0x15, 3, 1, 0, 2, 1, 0x5a]), { kind: "malformed", why: "another tls record before the clienthello" }],
    ["a change_cipher_spec record first", Buffer.from([0x14, 3, 3, 0, 1, 1]), { kind: "malformed", why: "another tls record before the clienthello" }],
    ["an application_data record first", Buffer.from([0x17, 3, 3, 0, 1, 0]), { kind: "malformed", why: "another tls record before the clienthello" }],
    ["a heartbeat record first", Buffer.from([0x18, 3, 3, 0, 1, 0]), { kind: "malformed", why: "another tls record before the clienthello" }],
    ["a byte 0x15 that is not a record (no 3.x version)", Buffer.from([0x15, 0x41, 0x42]), { kind: "not_tls" }],
    ["a record version that is not 3.x", Buffer.from([0x16, 2, 0, 0, 4, 1, 0, 0, 0]), { kind: "malformed", why: "record version is not 3.x" }],
    ["a zero-length record", Buffer.from([0x16, 3, 1, 0, 0]), { kind: "malformed", why: "bad record length" }],
    ["a ServerHello instead", records([2, ...u24(4), 0, 0, 0, 0]), { kind: "malformed", why: "first handshake message is not a clienthello" }],
    ["a ClientHello claiming 1 MiB", Buffer.from([0x16, 3, 1, 0, 4, 1, 0x10, 0, 0]), { kind: "malformed", why: "clienthello too large" }],
    ["two host_name entries (RFC 6066 §3)", records(clientHelloMessage([sniExtension([0, "a.example"], [0, "b.example"])])), { kind: "malformed", why: "more than one host_name" }],
    ["two server_name extensions (RFC 8446 §4.2)", records(clientHelloMessage([sniExtension([0, "a.example"]), sniExtension([0, "b.example"])])), { kind: "malformed", why: "duplicate extension" }],
    ["an empty host_name", records(clientHelloMessage([sniExtension([0, ""])])), { kind: "malformed", why: "empty host_name" }],
    ["a host_name with a NUL byte", records(clientHelloMessage([sniExtension([0, "a.example\u0000.evil"])])), { kind: "malformed", why: "host_name is not printable ascii" }],
    ["a host_name with a space", records(clientHelloMessage([sniExtension([0, "a.example evil"])])), { kind: "malformed", why: "host_name is not printable ascii" }],
    ["a server_name list with only another name type", records(clientHelloMessage([sniExtension([1, "x"])])), { kind: "malformed", why: "server_name without host_name" }],
    ["a session id longer than 32 bytes", records(clientHelloMessage([], { sessionId: 33 })), { kind: "malformed", why: "bad session id" }],
    ["an odd cipher suites length", records(clientHelloMessage([], { suites: 3 })), { kind: "malformed", why: "bad cipher suites" }],
  ])("refuses %s", (_title, data, expected) => {
    expect(parseClientHello(data)).toEqual(expected);
  });

  it("refuses bytes of another message after the ClientHello in the same record", () => {
    const message = clientHelloMessage([sniExtension([0, "a.example"])]);
    expect(parseClientHello(records([...message, 0x14, 0, 0, 0]))).toEqual({ kind: "malformed", why: "data after clienthello in its records" });
  });

  /** An extension of `type` with `length` opaque bytes (an ECH payload's content is never read). */
  const opaqueExtension = (type: number, length = 40): number[] => [...u16(type), ...u16(length), ...new Array<number>(length).fill(0xab)];

  it.each<[string, number[][], boolean]>([
    ["an outer ClientHello with encrypted_client_hello (0xfe0d)", [sniExtension([0, "public.example"]), opaqueExtension(0xfe0d)], true],
    ["ECH before the SNI", [opaqueExtension(0xfe0d), sniExtension([0, "public.example"])], true],
    ["an earlier ECH draft's type (0xfe0a)", [sniExtension([0, "public.example"]), opaqueExtension(0xfe0a)], true],
    ["ESNI (0xffce), with no SNI at all", [opaqueExtension(0xffce)], true],
    ["a neighbouring type that is not ECH (0xfe0e)", [sniExtension([0, "public.example"]), opaqueExtension(0xfe0e)], false],
    ["no ECH", [sniExtension([0, "public.example"])], false],
  ])("flags %s", (_title, extensions, encrypted) => {
    expect(parseClientHello(records(clientHelloMessage(extensions)))).toMatchObject({ kind: "ok", encryptedClientHello: encrypted });
    // fragmented across records the answer is the same (the one-record fast path agrees with reassembly)
    expect(parseClientHello(records(clientHelloMessage(extensions), 7))).toMatchObject({ kind: "ok", encryptedClientHello: encrypted });
  });

  it("forgets an ECH extension of one ClientHello before the next", () => {
    parseClientHello(records(clientHelloMessage([sniExtension([0, "a.example"]), opaqueExtension(0xfe0d)])));
    expect(parseClientHello(records(clientHelloMessage([sniExtension([0, "a.example"])])))).toMatchObject({ encryptedClientHello: false });
    parseClientHello(records(clientHelloMessage([sniExtension([0, "a.example"]), opaqueExtension(0xfe0d)])));
    expect(parseClientHello(records(clientHelloMessage([], { suites: 2 })))).toMatchObject({ encryptedClientHello: false });
  });

  it("a real client without ECH is not flagged", async () => {
    expect(parseClientHello(await realClientHello("allowed.example"))).toMatchObject({ kind: "ok", encryptedClientHello: false });
  });

  it("keeps the SNI raw: normalisation (and its refusals) happen in the decision", () => {
    const data = records(clientHelloMessage([sniExtension([0, "ALLOWED.Example."])]));
    expect(parseClientHello(data)).toMatchObject({ kind: "ok", serverName: "ALLOWED.Example." });
  });

  it("never throws on mutated real ClientHellos, and only ever returns printable-ASCII names (fuzz)", async () => {
    const hello = [...(await realClientHello("allowed.example"))];
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(hello.length - 1), fc.nat(255)), { minLength: 1, maxLength: 8 }),
        fc.nat(hello.length),
        (mutations, cut) => {
          const bytes = hello.slice();
          for (const [at, value] of mutations) bytes[at] = value;
          const result = parseClientHello(Buffer.from(bytes.slice(0, Math.max(cut, 1))));
          expect(["ok", "incomplete", "not_tls", "malformed"]).toContain(result.kind);
          if (result.kind === "ok" && result.serverName !== null) expect(result.serverName).toMatch(/^[\x21-\x7e]+$/);
        },
      ),
      { numRuns: 5000 },
    );
  });

  it("gives the same answer for a mutated ClientHello in one record as fragmented across several (the one-record fast path agrees with reassembly; fuzz)", async () => {
    const message = [...(await realClientHello("allowed.example"))].slice(5); // the handshake message alone
    fc.assert(
      // the handshake header (type, length) stays intact, so both forms hold the same message
      fc.property(fc.array(fc.tuple(fc.integer({ min: 4, max: message.length - 1 }), fc.nat(255)), { maxLength: 6 }), fc.integer({ min: 1, max: 300 }), (mutations, fragment) => {
        const bytes = message.slice();
        for (const [at, value] of mutations) bytes[at] = value;
        const whole = parseClientHello(records(bytes));
        const pieces = parseClientHello(records(bytes, fragment));
        const comparable = (r: ReturnType<typeof parseClientHello>): unknown => (r.kind === "ok" ? { kind: r.kind, serverName: r.serverName } : r);
        expect(comparable(pieces)).toEqual(comparable(whole));
      }),
      { numRuns: 3000 },
    );
  });

  it("forgets the extensions of one ClientHello before the next (a duplicate is per message, never across messages)", () => {
    const once = records(clientHelloMessage([sniExtension([0, "a.example"]), [0, 10, 0, 0]]));
    const twice = records(clientHelloMessage([[0, 10, 0, 0], sniExtension([0, "a.example"]), [0, 10, 0, 0]]));
    expect(parseClientHello(once)).toMatchObject({ kind: "ok", serverName: "a.example" });
    expect(parseClientHello(twice)).toEqual({ kind: "malformed", why: "duplicate extension" });
    expect(parseClientHello(once)).toMatchObject({ kind: "ok", serverName: "a.example" });
  });

  it("never throws on arbitrary bytes that start like a handshake record (fuzz)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (tail) => {
        const data = Buffer.concat([Buffer.from([0x16, 3, 1]), Buffer.from(tail)]);
        expect(() => parseClientHello(data)).not.toThrow();
      }),
      { numRuns: 5000 },
    );
  });
});
