import { EgressConfigError, parseApprovals, parseBlocklistSources, parseEgressProfile } from "./config";

describe("parseEgressProfile", () => {
  it("reads only the egress fields, canonicalising hosts and defaulting ports to 443", () => {
    const text = JSON.stringify({
      sandbox: "s",
      upstreams: [{ name: "x", provider: "openai-compatible", endpoint: "http://u" }],
      egressMode: "Strict",
      allowedEndpoints: [{ host: "API.GitHub.com." }, { host: "*.Blob.Core.Windows.Net", port: 8443 }, { host: "0x7f.1" }],
    });
    expect(parseEgressProfile(text)).toEqual({
      egressMode: "Strict",
      encryptedClientHello: "Refuse",
      allowedEndpoints: [
        { host: "api.github.com", port: 443 },
        { host: "*.blob.core.windows.net", port: 8443 },
        { host: "127.0.0.1", port: 443 },
      ],
    });
  });

  it("defaults to Learn with no endpoints (KarsSandbox defaults)", () => {
    expect(parseEgressProfile("{}")).toEqual({ egressMode: "Learn", allowedEndpoints: [], encryptedClientHello: "Allow" });
  });

  it.each([
    ["Strict refuses Encrypted Client Hello by default (fail closed)", { egressMode: "Strict" }, "Refuse"],
    ["Learn allows it by default", { egressMode: "Learn" }, "Allow"],
    ["Strict may allow it", { egressMode: "Strict", encryptedClientHello: "Allow" }, "Allow"],
    ["Learn may refuse it", { egressMode: "Learn", encryptedClientHello: "Refuse" }, "Refuse"],
  ])("%s", (_title, doc, expected) => {
    expect(parseEgressProfile(JSON.stringify(doc)).encryptedClientHello).toBe(expected);
  });

  it.each([
    ["not JSON", "{", ""],
    ["an array", "[]", ""],
    ["an unknown mode", JSON.stringify({ egressMode: "Open" }), "egressMode"],
    ["endpoints not a list", JSON.stringify({ allowedEndpoints: {} }), "allowedEndpoints"],
    ["an endpoint without host", JSON.stringify({ allowedEndpoints: [{ port: 443 }] }), "allowedEndpoints[0].host"],
    ["an invalid host", JSON.stringify({ allowedEndpoints: [{ host: "ok.example" }, { host: "a b" }] }), "allowedEndpoints[1].host"],
    ["port 0", JSON.stringify({ allowedEndpoints: [{ host: "a.example", port: 0 }] }), "allowedEndpoints[0].port"],
    ["a string port", JSON.stringify({ allowedEndpoints: [{ host: "a.example", port: "443" }] }), "allowedEndpoints[0].port"],
    ["a wildcard IP", JSON.stringify({ allowedEndpoints: [{ host: "*.10.0.0.1" }] }), "allowedEndpoints[0].host"],
    ["an unknown ECH policy", JSON.stringify({ encryptedClientHello: "refuse" }), "encryptedClientHello"],
  ])("rejects %s, naming the path", (_title, text, path) => {
    try {
      parseEgressProfile(text);
      throw new Error("expected a rejection");
    } catch (err) {
      expect(err).toBeInstanceOf(EgressConfigError);
      expect((err as EgressConfigError).path).toBe(path);
      expect((err as Error).message).toMatch(/^profile\.json: /);
    }
  });
});

describe("parseApprovals", () => {
  it("reads grants with their expiry in ms", () => {
    expect(parseApprovals(JSON.stringify([{ name: "t-1", hosts: [{ host: "a.example", port: 22 }], expiresAt: "2026-11-30T12:00:00Z" }]))).toEqual([
      { name: "t-1", hosts: [{ host: "a.example", port: 22 }], expiresAt: Date.parse("2026-11-30T12:00:00Z") },
    ]);
  });
  it.each([
    ["an object instead of a list", "{}", ""],
    ["a grant without name", JSON.stringify([{ hosts: [], expiresAt: "2026-11-30T12:00:00Z" }]), "[0].name"],
    ["a bad expiry", JSON.stringify([{ name: "x", hosts: [], expiresAt: "tomorrow" }]), "[0].expiresAt"],
    ["a bad host", JSON.stringify([{ name: "x", hosts: [{ host: "" }], expiresAt: "2026-11-30T12:00:00Z" }]), "[0].hosts[0].host"],
  ])("rejects %s", (_title, text, path) => {
    expect(() => parseApprovals(text)).toThrow(EgressConfigError);
    try {
      parseApprovals(text);
    } catch (err) {
      expect((err as EgressConfigError).path).toBe(path);
    }
  });
});

describe("parseBlocklistSources", () => {
  it("accepts URL strings and {url} objects, with a default period of a day", () => {
    expect(parseBlocklistSources(JSON.stringify({ sources: ["https://big.oisd.nl/domainswild", { url: "https://urlhaus.abuse.ch/downloads/hostfile/" }] }))).toEqual({
      sources: [{ url: "https://big.oisd.nl/domainswild" }, { url: "https://urlhaus.abuse.ch/downloads/hostfile/" }],
      periodSeconds: 86400,
    });
  });
  it.each([
    ["a file URL", JSON.stringify({ sources: ["file:///etc/passwd"] }), "sources[0]"],
    ["a non-URL", JSON.stringify({ sources: ["nope"] }), "sources[0]"],
    ["a period under a minute", JSON.stringify({ sources: [], periodSeconds: 5 }), "periodSeconds"],
  ])("rejects %s", (_title, text, path) => {
    try {
      parseBlocklistSources(text);
      throw new Error("expected a rejection");
    } catch (err) {
      expect((err as EgressConfigError).path).toBe(path);
    }
  });
});
