// The configuration store against a real directory and a loopback HTTP server standing in for the
// blocklist sources (PITFALLS: real lists cannot be downloaded here, so they are generated).
import { createServer, type Server } from "node:http";
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { Registry } from "prom-client";
import { EgressConfigStore } from "./config-store";
import { createEgressMetrics, EgressHotCounters } from "./metrics";
import { profileJson } from "../test-support/profile-json";

let dir: string;
let server: Server;
let base: string;
let serve: { status: number; body: string } = { status: 200, body: "" };

beforeAll(async () => {
  server = createServer((_req, res) => {
    res.writeHead(serve.status, { "content-type": "text/plain" });
    res.end(serve.body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "kars-egress-store-"));
  mkdirSync(path.join(dir, "config", "blocklist"), { recursive: true });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, content: string): void {
  writeFileSync(path.join(dir, "config", name), content);
}

function makeStore(now: () => number = Date.now, logLines?: string[]): { store: EgressConfigStore; registry: Registry } {
  const registry = new Registry();
  const holder: { store?: EgressConfigStore } = {};
  const metrics = createEgressMetrics(registry, () => holder.store?.stalenessSeconds() ?? 0, new EgressHotCounters());
  const store = new EgressConfigStore({ configDir: path.join(dir, "config"), stateDir: path.join(dir, "state"), logger: logLines ? pino({ level: "info" }, { write: (l: string) => void logLines.push(l) }) : pino({ level: "silent" }), metrics, reloadIntervalMs: 3_600_000, now });
  holder.store = store;
  return { store, registry };
}

async function metric(registry: Registry, name: string): Promise<number | undefined> {
  const m = await registry.getSingleMetric(name)?.get();
  return m?.values[0]?.value;
}

describe("EgressConfigStore", () => {
  it("is not ready and has no profile without profile.json (decisions then fail closed)", async () => {
    const { store } = makeStore();
    await store.start();
    expect(store.snapshot().profile).toBeUndefined();
    expect(store.status()).toEqual({ ready: false, reasons: ["profile.json: missing"] });
    await store.stop();
  });

  it("keeps the last good profile when a new version is invalid, and says why", async () => {
    write("profile.json", profileJson({ egressMode: "Strict", allowedEndpoints: [{ host: "a.example" }] }));
    const { store, registry } = makeStore();
    await store.start();
    expect(store.status().ready).toBe(true);
    write("profile.json", profileJson({ egressMode: "Wide open" }));
    await store.poll();
    expect(store.snapshot().profile?.allowedEndpoints).toEqual([{ host: "a.example", port: 443 }]);
    expect(store.status()).toEqual({
      ready: false,
      reasons: ["profile.json: egressMode: must be equal to one of the allowed values (Strict, Learn) (keeping the last good version)"],
    });
    expect((await registry.getSingleMetric("kars_egress_config_valid")?.get())?.values).toContainEqual(expect.objectContaining({ labels: { file: "profile.json" }, value: 0 }));
    write("profile.json", profileJson({ egressMode: "Learn" }));
    await store.poll();
    expect(store.snapshot().profile?.egressMode).toBe("Learn");
    expect(store.status().ready).toBe(true);
    await store.stop();
  });

  it("loads seed lists in any format from blocklist/ and picks up changes", async () => {
    write("profile.json", profileJson());
    write("blocklist/oisd.txt", "# Version: 1\n*.ads.example\n");
    write("blocklist/urlhaus.txt", "127.0.0.1 bad.example\n");
    const { store, registry } = makeStore();
    await store.start();
    expect(store.snapshot().blocklist.has("x.ads.example")).toBe(true);
    expect(store.snapshot().blocklist.has("bad.example")).toBe(true);
    write("blocklist/urlhaus.txt", "127.0.0.1 worse.example\nbroken line here\n");
    await store.poll();
    expect(store.snapshot().blocklist.has("bad.example")).toBe(false);
    expect(store.snapshot().blocklist.has("worse.example")).toBe(true);
    expect(await metric(registry, "kars_egress_blocklist_entries")).toBe(2);
    expect(await metric(registry, "kars_egress_blocklist_unparsed_lines")).toBe(1);
    await store.stop();
  });

  it.each([
    ["seed lists only", false],
    ["seed lists and a source", true],
  ])("says once at start that the blocklist is loaded (%s)", async (_title, withSource) => {
    write("profile.json", profileJson());
    write("blocklist/oisd.txt", "*.ads.example\n");
    serve = { status: 200, body: "127.0.0.1 remote.example\n" };
    if (withSource) write("blocklist-sources.json", JSON.stringify({ sources: [`${base}/hosts`], periodSeconds: 3600 }));
    const lines: string[] = [];
    const { store } = makeStore(Date.now, lines);
    await store.start();
    expect(lines.filter(l => l.includes("egress blocklist loaded")).map(l => JSON.parse(l).lists)).toEqual([withSource ? 2 : 1]);
    expect(store.snapshot().blocklist.has("remote.example")).toBe(withSource);
    await store.stop();
  });

  it("decides nothing while the seed lists have never been read (fail closed), until they are", async () => {
    write("profile.json", profileJson({ egressMode: "Learn" }));
    write("blocklist/oisd.txt", "*.ads.example\n");
    symlinkSync("/nonexistent-kars-list", path.join(dir, "config", "blocklist", "broken.txt")); // stat fails: the directory cannot be read whole
    const { store } = makeStore();
    await store.start();
    expect(store.snapshot().profile).toBeUndefined();
    expect(store.status()).toMatchObject({ ready: false, reasons: [expect.stringMatching(/^blocklist\/: .*ENOENT.*keeping the previous lists/)] });
    rmSync(path.join(dir, "config", "blocklist", "broken.txt"));
    await store.poll();
    expect([store.snapshot().profile?.egressMode, store.snapshot().blocklist.has("x.ads.example"), store.status().ready]).toEqual(["Learn", true, true]);
    await store.stop();
  });

  it.each([
    ["a seed list no line of which could be read", () => write("blocklist/oisd.txt", "<html>\n<body>not a list</body>\n")],
    ["a blocklist/ that is a symlink to nothing (not the same as no directory)", () => {
      rmSync(path.join(dir, "config", "blocklist"), { recursive: true });
      symlinkSync("/nonexistent-kars-dir", path.join(dir, "config", "blocklist"));
    }],
  ])("decides nothing at start on %s (fail closed), and says why", async (_title, make) => {
    write("profile.json", profileJson({ egressMode: "Learn" }));
    make();
    const { store } = makeStore();
    await store.start();
    expect(store.snapshot().profile).toBeUndefined();
    expect(store.status()).toMatchObject({ ready: false, reasons: [expect.stringMatching(/^blocklist\/: .*(no entry could be read|symlink to nothing).*keeping the previous lists/)] });
    await store.stop();
  });

  it("keeps the last good copy of a source that now serves a list no line of which could be read, in memory and in its cache", async () => {
    write("profile.json", profileJson());
    write("blocklist-sources.json", JSON.stringify({ sources: [`${base}/hosts`], periodSeconds: 3600 }));
    serve = { status: 200, body: "127.0.0.1 remote.example\n" };
    const first = makeStore();
    await first.store.start();
    expect(first.store.snapshot().blocklist.has("remote.example")).toBe(true);
    serve = { status: 200, body: "<html>maintenance</html>\n" };
    await first.store.refreshSources();
    expect(first.store.snapshot().blocklist.has("remote.example")).toBe(true);
    await first.store.stop();
    serve = { status: 500, body: "" };
    const restarted = makeStore(); // the source is down: the cached copy is the good one, not the maintenance page
    await restarted.store.start();
    expect(restarted.store.snapshot().blocklist.has("remote.example")).toBe(true);
    await restarted.store.stop();
  });

  it("refreshes sources, falls back to the last good copy (also across restarts), and reports staleness", async () => {
    let clock = Date.parse("2026-11-30T12:00:00Z");
    const now = (): number => clock;
    write("profile.json", profileJson());
    write("blocklist-sources.json", JSON.stringify({ sources: [`${base}/oisd`], periodSeconds: 3600 }));
    serve = { status: 200, body: "*.refreshed.example\n" };
    const first = makeStore(now);
    await first.store.start();
    expect(first.store.snapshot().blocklist.has("a.refreshed.example")).toBe(true);
    expect(await metric(first.registry, "kars_egress_blocklist_staleness_seconds")).toBe(0);

    // the source breaks: the refresh fails and the last good list stays in force
    serve = { status: 500, body: "" };
    clock += 7200_000;
    await first.store.refreshSources();
    expect(first.store.snapshot().blocklist.has("a.refreshed.example")).toBe(true);
    expect(await metric(first.registry, "kars_egress_blocklist_staleness_seconds")).toBe(7200);
    expect((await first.registry.getSingleMetric("kars_egress_blocklist_refreshes_total")?.get())?.values).toEqual(
      expect.arrayContaining([expect.objectContaining({ labels: { result: "ok" }, value: 1 }), expect.objectContaining({ labels: { result: "error" }, value: 1 })]),
    );
    await first.store.stop();

    // a restart while the source is still down starts from the cached copy in the state directory
    const second = makeStore(now);
    await second.store.start();
    expect(second.store.snapshot().blocklist.has("a.refreshed.example")).toBe(true);
    await second.store.stop();
  });

  it("reports a bad blocklist-sources.json and keeps its previous sources", async () => {
    write("profile.json", profileJson());
    write("blocklist-sources.json", JSON.stringify({ sources: ["ftp://x"] }));
    const { store } = makeStore();
    await store.start();
    expect(store.status().reasons).toEqual(["blocklist-sources.json: sources[0]: must be http or https, found ftp:"]);
    await store.stop();
  });
});
