// startEgressProxy's own wiring: what it does with decisions (Learn mode's learned hosts). Loopback
// only: names resolve to 127.0.0.1, taken as public here, and nothing listens on the ports dialled.
jest.mock("./ip-address", () => {
  const actual = jest.requireActual("./ip-address");
  return { ...actual, classifyAddress: (a: string) => (a === "127.0.0.1" ? { public: true } : actual.classifyAddress(a)) };
});
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { startEgressProxy, type EgressProxy } from "./index";
import { profileJson } from "../test-support/profile-json";

let dir: string;
let proxy: EgressProxy;
afterEach(async () => {
  await proxy?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Sends a CONNECT for `authority` and resolves with the status line once the proxy answers. */
function connectTo(authority: string): Promise<string> {
  const [host, port] = proxy.address.split(":");
  return new Promise((resolve) => {
    const s = connect({ host, port: Number(port) }, () => s.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`));
    let got = "";
    s.on("data", (d) => {
      got += d.toString("latin1");
      if (got.includes("\r\n")) {
        s.destroy();
        resolve(got.split("\r\n")[0]);
      }
    });
    s.on("error", () => resolve(got));
  });
}

it("warns and counts in kars_egress_learned_hosts_dropped when Learn mode's list is full (the hosts stay allowed and audited)", async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "kars-egress-index-"));
  mkdirSync(path.join(dir, "config"));
  writeFileSync(path.join(dir, "config", "profile.json"), profileJson({ egressMode: "Learn" }));
  const lines: string[] = [];
  const audited: string[] = [];
  proxy = await startEgressProxy({
    configDir: path.join(dir, "config"),
    stateDir: path.join(dir, "state"),
    port: 0,
    logger: pino({ level: "warn" }, { write: (l: string) => void lines.push(l) }),
    audit: (e) => void audited.push(`${e.decision.allow ? "allowed" : "refused"} ${e.decision.host}`),
    resolve: async () => ["127.0.0.1"],
    maxLearnedHosts: 2,
  });
  for (const host of ["a.test", "b.test", "c.test", "d.test"]) await connectTo(`${host}:443`); // 127.0.0.1:443: nothing listens, the dial fails
  expect(audited).toEqual(["allowed a.test", "allowed b.test", "allowed c.test", "allowed d.test"]);
  const metrics = await proxy.registry.metrics();
  expect(metrics).toMatch(/^kars_egress_learned_hosts 2$/m);
  expect(metrics).toMatch(/^kars_egress_learned_hosts_dropped 2$/m);
  const warnings = lines.map((l) => JSON.parse(l)).filter((l) => l.msg.startsWith("egress learned hosts list is full"));
  expect(warnings).toHaveLength(1); // once, not per host
  expect(warnings[0]).toMatchObject({ host: "c.test", dropped: 1, recorded: 2 });
});

it("logs a flood of denials line by line only up to a rate, sums up the rest on close, and audits every one", async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "kars-egress-index-"));
  mkdirSync(path.join(dir, "config"));
  writeFileSync(path.join(dir, "config", "profile.json"), profileJson({ egressMode: "Strict" }));
  const lines: string[] = [];
  let audited = 0;
  proxy = await startEgressProxy({
    configDir: path.join(dir, "config"),
    stateDir: path.join(dir, "state"),
    port: 0,
    logger: pino({ level: "info" }, { write: (l: string) => void lines.push(l) }),
    audit: () => void audited++,
    resolve: async () => ["127.0.0.1"],
  });
  const denials = 130;
  for (let i = 0; i < denials; i++) expect(await connectTo(`n${i}.test:443`)).toMatch(/ 403 /);
  await proxy.close();
  const logged = lines.map((l) => JSON.parse(l));
  const written = logged.filter((l) => l.msg === "egress deny").length;
  const summed = logged.filter((l) => l.msg.startsWith("egress deny lines left out")).reduce((n, l) => n + l.suppressed, 0);
  expect(written).toBeLessThan(denials); // a burst of 100 and 20 a second
  expect(written + summed).toBe(denials);
  expect(audited).toBe(denials);
});
