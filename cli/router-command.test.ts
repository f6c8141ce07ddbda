import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { main, parseRouterArgs } from "./router-command";

describe("parseRouterArgs", () => {
  it.each<[string, string[], { configDir: string; stateDir?: string } | RegExp]>([
    ["both flags", ["--config-dir", "/etc/kars", "--state-dir", "/var/kars"], { configDir: "/etc/kars", stateDir: "/var/kars" }],
    ["inline values", ["--config-dir=/etc/kars", "--state-dir=/s"], { configDir: "/etc/kars", stateDir: "/s" }],
    ["a relative dir is resolved", ["--config-dir", "cfg"], { configDir: path.resolve("cfg") }],
    ["the config dir is required", ["--state-dir", "/s"], /--config-dir is required/],
    ["a flag without a value", ["--config-dir"], /--config-dir needs a value/],
    ["an unknown flag", ["--config-dir", "/x", "--port", "1"], /unknown argument --port/],
  ])("%s", (_t, args, expected) => {
    if (expected instanceof RegExp) expect(() => parseRouterArgs(args)).toThrow(expected);
    else expect(parseRouterArgs(args)).toMatchObject(expected);
  });

  it("defaults the state dir outside the config dir", () => {
    expect(parseRouterArgs(["--config-dir", "/etc/kars"]).stateDir).toMatch(/\.cache\/kars\/router-state$/);
  });
});

describe("kars router --help", () => {
  it.each([["--help"], ["-h"]])("%s prints the usage with where the audit key is, and exits 0 without starting a router", async (flag) => {
    const out: string[] = [];
    const log = jest.spyOn(console, "log").mockImplementation((m: string) => void out.push(m));
    try {
      expect(await main([flag], null)).toBe(0);
      expect(out.join("\n")).toMatch(/^usage: kars router --config-dir DIR \[--state-dir DIR\][^]*audit-signing-key\.pub\.pem/);
    } finally {
      log.mockRestore();
    }
  });
});

describe("kars router stop signals", () => {
  it("a SIGTERM that arrives while the router is starting stops it cleanly once started (exit 0), not by the signal's default action", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kars-router-cmd-"));
    const configDir = path.join(dir, "config");
    fs.mkdirSync(configDir);
    fs.writeFileSync(path.join(configDir, "ops-token"), "ops-token-for-this-test");
    fs.writeFileSync(
      path.join(configDir, "profile.json"),
      JSON.stringify({
        sandbox: "cmd-test", tenant: "t", egressMode: "Strict", allowedEndpoints: [], inferencePolicy: {}, upstreams: [],
        listen: { api: "127.0.0.1:0", egress: "127.0.0.1:0", ops: "127.0.0.1:0" },
      }),
    );
    const listeners = process.listenerCount("SIGTERM");
    const write = jest.spyOn(process.stdout, "write").mockImplementation(() => true);
    const level = process.env.KARS_LOG_LEVEL;
    process.env.KARS_LOG_LEVEL = "silent";
    try {
      // the egress seam runs mid-startup: the signal comes before any LISTEN line is printed
      const startEgress = async () => {
        expect(write).not.toHaveBeenCalled();
        expect(process.emit("SIGTERM")).toBe(true); // someone listens already
        return { address: "127.0.0.1:1", close: async () => undefined, status: () => ({ ready: true, reasons: [] }) };
      };
      expect(await main(["--config-dir", configDir, "--state-dir", path.join(dir, "state")], startEgress)).toBe(0);
      expect(write.mock.calls.map(c => String(c[0]))).toEqual([expect.stringMatching(/^LISTEN api 127\.0\.0\.1:\d+\n$/), "LISTEN egress 127.0.0.1:1\n", expect.stringMatching(/^LISTEN ops 127\.0\.0\.1:\d+\n$/)]);
      expect(process.listenerCount("SIGTERM")).toBe(listeners);
    } finally {
      write.mockRestore();
      if (level === undefined) delete process.env.KARS_LOG_LEVEL;
      else process.env.KARS_LOG_LEVEL = level;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
