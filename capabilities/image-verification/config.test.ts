import { isPlainHttpRegistry, parseImageVerificationConfig } from "./config";

describe("parseImageVerificationConfig", () => {
  it("defaults to https everywhere and a 4 s deadline", () => {
    expect(parseImageVerificationConfig({})).toEqual({ plainHttpRegistries: [], deadlineMs: 4000 });
  });
  it("reads the registry auth file's path", () => {
    expect(parseImageVerificationConfig({ KARS_IMAGE_REGISTRY_AUTH_FILE: "/etc/kars/registry/.dockerconfigjson" }).registryAuthFile).toBe("/etc/kars/registry/.dockerconfigjson");
  });
  it("reads plain-http registries and the deadline", () => {
    expect(parseImageVerificationConfig({ KARS_IMAGE_PLAIN_HTTP_REGISTRIES: "127.0.0.1:*, localhost:5000", KARS_IMAGE_VERIFY_DEADLINE_MS: "1500" })).toEqual({ plainHttpRegistries: ["127.0.0.1:*", "localhost:5000"], deadlineMs: 1500 });
  });
  it.each<[Record<string, string>, RegExp]>([
    [{ KARS_IMAGE_PLAIN_HTTP_REGISTRIES: "http://127.0.0.1:5000" }, /KARS_IMAGE_PLAIN_HTTP_REGISTRIES: "http:\/\/127.0.0.1:5000" is not host:port or host:\*/],
    [{ KARS_IMAGE_PLAIN_HTTP_REGISTRIES: "registry.example.com" }, /is not host:port/],
    [{ KARS_IMAGE_VERIFY_DEADLINE_MS: "9000" }, /KARS_IMAGE_VERIFY_DEADLINE_MS: must be an integer from 100 to 4500, got "9000"/],
    [{ KARS_IMAGE_VERIFY_DEADLINE_MS: "soon" }, /KARS_IMAGE_VERIFY_DEADLINE_MS/],
    [{ KARS_IMAGE_REGISTRY_AUTH_FILE: "config.json" }, /KARS_IMAGE_REGISTRY_AUTH_FILE: must be an absolute path, got "config.json"/],
  ])("refuses %j", (env, why) => {
    expect(() => parseImageVerificationConfig(env)).toThrow(why);
  });
});

describe("isPlainHttpRegistry", () => {
  it.each<[string, string[], boolean]>([
    ["127.0.0.1:5000", ["127.0.0.1:*"], true],
    ["127.0.0.1:5000", ["127.0.0.1:5000"], true],
    ["127.0.0.1:5001", ["127.0.0.1:5000"], false],
    ["127.0.0.10:5000", ["127.0.0.1:*"], false],
    ["127.0.0.1", ["127.0.0.1:*"], false],
    ["evil.example:443", ["127.0.0.1:*"], false],
  ])("%s with %j → %p", (registry, entries, expected) => {
    expect(isPlainHttpRegistry(registry, entries)).toBe(expected);
  });
});
