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
