import { Writable } from "node:stream";
import { CredentialRegistry, MAX_REMEMBERED_VALUES } from "./credential-registry";
import { routerLogger } from "./router-logger";

/** A logger writing into an array of parsed JSON lines. */
function capture(): { lines: string[]; log: ReturnType<typeof routerLogger> } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
      done();
    },
  });
  return { lines, log: routerLogger("info", sink) };
}

const SECRET = "sk-live-SECRET-0123456789";

describe("routerLogger", () => {
  it.each([
    ["an incoming request's Authorization header", { req: { headers: { authorization: `Bearer ${SECRET}`, host: "x" } } }, "req.headers.authorization"],
    ["an incoming request's api-key header", { req: { headers: { "api-key": SECRET } } }, 'req.headers["api-key"]'],
    ["an x-api-key header", { req: { headers: { "x-api-key": SECRET } } }, 'req.headers["x-api-key"]'],
    ["an APIM subscription key", { req: { headers: { "ocp-apim-subscription-key": SECRET } } }, 'req.headers["ocp-apim-subscription-key"]'],
    ["a headers object's Authorization", { headers: { authorization: `Bearer ${SECRET}` } }, "headers.authorization"],
    ["a headers object's api-key", { headers: { "api-key": SECRET } }, 'headers["api-key"]'],
    ["an Authorization one level down anywhere", { upstreamRequest: { authorization: `Bearer ${SECRET}` } }, "upstreamRequest.authorization"],
    ["an api-key one level down anywhere", { upstreamRequest: { "api-key": SECRET } }, 'upstreamRequest["api-key"]'],
    ["a token field", { token: SECRET }, "token"],
    ["a token one level down", { credential: { token: SECRET } }, "credential.token"],
  ])("never writes %s, and says it was redacted", (_title, fields, where) => {
    const { lines, log } = capture();
    log.info(fields, "something happened");
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain(SECRET);
    const parsed = JSON.parse(lines[0]) as Record<string, unknown>;
    const value = where.split(/\.|\["|"\]/).filter(Boolean).reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], parsed);
    expect(value).toBe("[redacted]");
  });

  it("leaves other fields as they are", () => {
    const { lines, log } = capture();
    log.info({ req: { headers: { host: "api.example", "content-type": "application/json" } }, model: "gpt-4o" }, "ok");
    expect(JSON.parse(lines[0])).toMatchObject({ req: { headers: { host: "api.example", "content-type": "application/json" } }, model: "gpt-4o" });
  });
});

describe("routerLogger with a CredentialRegistry", () => {
  const KEY = "sk-upstream-0123456789abcdef";
  it("drops the upstream bytes an HTTP parser error quotes (its data), causes included", () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString("utf8"));
        done();
      },
    });
    const parserError = () => Object.assign(new Error("Parse Error: Invalid header value char"), { name: "HTTPParserError", data: "x-echo: sk-echo-of-something\r\n" });
    routerLogger("info", sink).error({ err: new Error("upstream failed", { cause: parserError() }) }, "request failed");
    routerLogger("info", sink).error({ err: parserError() }, "request failed");
    expect(lines.join("")).not.toContain("sk-echo-of-something");
    expect(lines.join("")).toContain("Invalid header value char");
  });

  it.each<[string, (log: ReturnType<typeof routerLogger>) => void]>([
    ["a piece of it (an upstream's echo cut where it chose)", log => log.error({ err: new Error(`bad header ${KEY.slice(3, 21)}`) }, "request failed")],
    ["a cause's message", log => log.error({ err: new Error("upstream failed", { cause: new Error(`refused key ${KEY}`) }) }, "request failed")],
    ["a field of any name", log => log.warn({ upstreamBody: `{"echo":"Bearer ${KEY}"}` }, "odd answer")],
    ["the message itself", log => log.info(`key ${KEY} rotated`)],
    ["the key base64-encoded", log => log.info({ dump: Buffer.from(`authorization: Bearer ${KEY}`).toString("base64") }, "dump")],
  ])("cuts a credential the router has used out of %s", (_t, write) => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
        done();
      },
    });
    const credentials = new CredentialRegistry();
    credentials.rememberHeaders({ authorization: `Bearer ${KEY}` });
    write(routerLogger("info", sink, credentials));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("[redacted]");
    expect(lines[0]).not.toContain(KEY);
    expect(lines[0]).not.toContain(Buffer.from(KEY).toString("base64").slice(4, -4));
    expect(() => JSON.parse(lines[0])).not.toThrow();
  });
});

describe("CredentialRegistry", () => {
  it("forgets the oldest credentials beyond its bound, and redacts nothing before it has seen one", () => {
    const r = new CredentialRegistry();
    expect(r.redact("nothing sk-abcdefghijklmnop")).toBe("nothing sk-abcdefghijklmnop");
    const key = (i: number) => `key-${String(i).padStart(4, "0")}-abcdefgh`;
    for (let i = 0; i < MAX_REMEMBERED_VALUES; i++) r.rememberHeaders({ "api-key": key(i) }); // each with its base64 forms
    expect(r.redact(key(0))).toBe(key(0));
    expect(r.redact(key(MAX_REMEMBERED_VALUES - 1))).toBe("[redacted]");
  });
});
