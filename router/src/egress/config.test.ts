import { parseProfile, ProfileError } from "../config/profile";
import { profileJson } from "../test-support/profile-json";
import { EgressConfigError, parseApprovals, parseBlocklistSources, parseEgressProfile } from "./config";

describe("parseEgressProfile", () => {
  it("reads the egress fields, canonicalising hosts and defaulting ports to 443", () => {
    const text = profileJson({
      upstreams: [{ name: "x", provider: "openai-compatible", endpoint: "http://u", apiKeyFile: "k" }],
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

  it.each([
    ["Strict refuses Encrypted Client Hello by default (fail closed)", { egressMode: "Strict" }, "Refuse"],
    ["Learn allows it by default", { egressMode: "Learn" }, "Allow"],
    ["Strict may allow it", { egressMode: "Strict", encryptedClientHello: "Allow" }, "Allow"],
    ["Learn may refuse it", { egressMode: "Learn", encryptedClientHello: "Refuse" }, "Refuse"],
  ])("%s", (_title, doc, expected) => {
    expect(parseEgressProfile(profileJson(doc)).encryptedClientHello).toBe(expected);
  });

  // Both readers of profile.json judge the whole file alike (helper-21's red-team round: a profile
  // without egressMode, which the inference side rejected, turned a Strict proxy into a Learn one).
  const { egressMode: _m, ...withoutMode } = JSON.parse(profileJson()) as Record<string, unknown>;
  it.each<[string, string, RegExp]>([
    ["not JSON", "{", /not JSON/],
    ["an array", "[]", /\(root\): must be object/],
    ["no egressMode (no Learn by default)", JSON.stringify(withoutMode), /must have required property 'egressMode'/],
    ["a null egressMode", profileJson({ egressMode: null }), /egressMode: must be equal to one of the allowed values/],
    ["an unknown mode", profileJson({ egressMode: "Open" }), /egressMode: must be equal to one of the allowed values \(Strict, Learn\)/],
    ["no allowedEndpoints", JSON.stringify({ ...JSON.parse(profileJson()), allowedEndpoints: undefined }), /must have required property 'allowedEndpoints'/],
    ["endpoints not a list", profileJson({ allowedEndpoints: {} }), /allowedEndpoints: must be array/],
    ["an endpoint without host", profileJson({ allowedEndpoints: [{ port: 443 }] }), /allowedEndpoints\[0\]: must have required property 'host'/],
    ["an endpoint with an unknown field", profileJson({ allowedEndpoints: [{ host: "a.example", prot: 80 }] }), /allowedEndpoints\[0\]: must NOT have additional properties \(prot\)/],
    ["an invalid host", profileJson({ allowedEndpoints: [{ host: "ok.example" }, { host: "a b" }] }), /allowedEndpoints\[1\]\.host: not a valid host/],
    ["a host with a port in it", profileJson({ allowedEndpoints: [{ host: "api.example.com:443" }] }), /allowedEndpoints\[0\]\.host: not a valid host/],
    ["a URL as host", profileJson({ allowedEndpoints: [{ host: "https://api.example.com" }] }), /allowedEndpoints\[0\]\.host: /],
    ["port 0", profileJson({ allowedEndpoints: [{ host: "a.example", port: 0 }] }), /allowedEndpoints\[0\]\.port: must be >= 1/],
    ["a string port", profileJson({ allowedEndpoints: [{ host: "a.example", port: "443" }] }), /allowedEndpoints\[0\]\.port: must be integer/],
    ["a wildcard IP", profileJson({ allowedEndpoints: [{ host: "*.10.0.0.1" }] }), /allowedEndpoints\[0\]\.host: a wildcard needs a domain name/],
    ["an unknown ECH policy", profileJson({ encryptedClientHello: "refuse" }), /encryptedClientHello: must be equal to one of the allowed values/],
    ["a null ECH policy", profileJson({ encryptedClientHello: null }), /encryptedClientHello: must be equal to one of the allowed values/],
    ["a misspelt top-level field", profileJson({ encryptedClientHelo: "Allow" }), /must NOT have additional properties \(encryptedClientHelo\)/],
    ["no tenant", JSON.stringify({ ...JSON.parse(profileJson()), tenant: undefined }), /must have required property 'tenant'/],
  ])("rejects %s, as the inference side does", (_title, text, message) => {
    let egress: unknown;
    try {
      parseEgressProfile(text);
    } catch (err) {
      egress = err;
    }
    expect(egress).toBeInstanceOf(EgressConfigError);
    expect((egress as Error).message).toMatch(/^profile\.json: /);
    expect((egress as Error).message).toMatch(message);
    expect(() => parseProfile(text)).toThrow(ProfileError);
  });

  it.each([
    ["a minimal profile", profileJson()],
    ["a wildcard and a port", profileJson({ egressMode: "Strict", allowedEndpoints: [{ host: "*.example.com", port: 8443 }] })],
    ["an IDN host", profileJson({ allowedEndpoints: [{ host: "bücher.example" }] })],
  ])("accepts %s, as the inference side does", (_title, text) => {
    expect(() => parseEgressProfile(text)).not.toThrow();
    expect(() => parseProfile(text)).not.toThrow();
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
