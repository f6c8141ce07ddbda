import fc from "fast-check";
import { Blocklist } from "./blocklist";
import { parseBlocklistText } from "./blocklist-parse";
import { parseApprovals, parseEgressProfile } from "./config";
import { decideByPolicy, decideEgress, decideEgressNow, endpointMatches, type EgressPolicySnapshot, type Resolver } from "./decision";
import { profileJson } from "../test-support/profile-json";

const NOW = Date.parse("2026-11-30T12:00:00Z");
const blocklist = new Blocklist([parseBlocklistText("*.blocked.example\n0.0.0.0 exact.example\n")]);
const approvals = parseApprovals(
  JSON.stringify([
    { name: "active", hosts: [{ host: "approved.example" }, { host: "approved.example", port: 8443 }], expiresAt: "2026-11-30T13:00:00Z" },
    { name: "expired", hosts: [{ host: "expired.example" }], expiresAt: "2026-11-30T11:59:59Z" },
  ]),
);
const strict: EgressPolicySnapshot = {
  profile: parseEgressProfile(
    profileJson({
      egressMode: "Strict",
      allowedEndpoints: [{ host: "api.example" }, { host: "*.cdn.example" }, { host: "api.example", port: 8443 }, { host: "blocked.example" }, { host: "198.20.0.10" }, { host: "plain.example", port: 80 }],
    }),
  ),
  approvals,
  blocklist,
};
const learn: EgressPolicySnapshot = { ...strict, profile: { ...strict.profile!, egressMode: "Learn" } };

describe("decideByPolicy", () => {
  it.each([
    // [title, snapshot, host, port, via, expected]
    ["an allowlisted host", strict, "api.example", 443, "connect", { allow: true, reason: "allowlisted" }],
    ["an allowlisted host in another spelling", strict, "API.Example.", 443, "connect", { allow: true, reason: "allowlisted" }],
    ["an allowlisted IP literal in a numeric spelling", strict, "3323199498", 443, "connect", { allow: true, reason: "allowlisted" }],
    ["a subdomain under a *. endpoint", strict, "img.cdn.example", 443, "tls", { allow: true, reason: "allowlisted" }],
    ["the apex of a *. endpoint", strict, "cdn.example", 443, "connect", { allow: false, reason: "not_allowlisted" }],
    ["an allowlisted host on the port its endpoint names", strict, "api.example", 8443, "connect", { allow: true, reason: "allowlisted" }],
    ["an allowlisted host on another port", strict, "api.example", 22, "connect", { allow: false, reason: "port_not_allowed" }],
    ["a plain-HTTP endpoint over plain HTTP, each request decided", strict, "plain.example", 80, "http", { allow: true, reason: "allowlisted" }],
    ["a CONNECT tunnel to a plain-HTTP endpoint (its requests would go undecided)", strict, "plain.example", 80, "connect", { allow: false, reason: "port_not_allowed" }],
    ["a CONNECT tunnel to port 80 in Learn mode", learn, "other.example", 80, "connect", { allow: false, reason: "port_not_allowed" }],
    ["an allowlisted host over plain HTTP (endpoints name 443)", strict, "api.example", 80, "http", { allow: false, reason: "not_allowlisted" }],
    ["a host outside the allowlist", strict, "other.example", 443, "connect", { allow: false, reason: "not_allowlisted" }],
    ["a blocklisted host, even if allowlisted", strict, "blocked.example", 443, "connect", { allow: false, reason: "blocklisted" }],
    ["a blocklisted subdomain", strict, "x.Blocked.Example", 443, "connect", { allow: false, reason: "blocklisted" }],
    ["an exact blocklist entry", strict, "exact.example", 443, "connect", { allow: false, reason: "blocklisted" }],
    ["a host with an active approval (until it expires)", strict, "approved.example", 443, "connect", { allow: true, reason: "approved", approval: "active", until: Date.parse("2026-11-30T13:00:00Z") }],
    ["an approved host on the port its approval names", strict, "approved.example", 8443, "connect", { allow: true, reason: "approved" }],
    ["a host whose approval has expired", strict, "expired.example", 443, "connect", { allow: false, reason: "not_allowlisted" }],
    ["an unparseable host", strict, "a b", 443, "connect", { allow: false, reason: "invalid_host" }],
    ["a host with a zone id", strict, "[fe80::1%eth0]", 443, "connect", { allow: false, reason: "invalid_host" }],
    ["any host in Learn mode", learn, "other.example", 443, "connect", { allow: true, reason: "learn" }],
    ["plain HTTP on 80 in Learn mode", learn, "other.example", 80, "http", { allow: true, reason: "learn" }],
    ["plain HTTP on 443 in Learn mode", learn, "other.example", 443, "http", { allow: false, reason: "port_not_allowed" }],
    ["CONNECT to port 22 in Learn mode", learn, "other.example", 22, "connect", { allow: false, reason: "port_not_allowed" }],
    ["a blocklisted host in Learn mode", learn, "x.blocked.example", 443, "connect", { allow: false, reason: "blocklisted" }],
    ["anything without a profile", { ...strict, profile: undefined }, "api.example", 443, "connect", { allow: false, reason: "no_config" }],
  ] as const)("decides on %s", (_title, snapshot, host, port, via, expected) => {
    expect(decideByPolicy({ host, port, via }, snapshot, NOW)).toMatchObject(expected);
  });
});

describe("decideEgress", () => {
  const dns: Record<string, string[]> = {
    "api.example": ["198.20.0.10", "2001:db9::10"],
    "other.example": ["198.20.0.11"],
    "rebind.example": ["10.0.0.5"],
    "mixed.example": ["198.20.0.10", "169.254.169.254"],
    "mapped.example": ["::ffff:10.0.0.1"],
    "empty.example": [],
  };
  const resolve: Resolver = async (name) => {
    const answer = dns[name];
    if (!answer) throw Object.assign(new Error("not found"), { code: "ENOTFOUND" });
    return answer;
  };

  it.each([
    ["dials the first checked address of an allowed name", strict, "api.example", { allow: true, address: "198.20.0.10", host: "api.example" }],
    ["refuses a name resolving to a private address", learn, "rebind.example", { allow: false, reason: "non_public_address", detail: "10.0.0.5 is private" }],
    ["refuses a name with one private answer among public ones", learn, "mixed.example", { allow: false, reason: "non_public_address", detail: "169.254.169.254 is link_local" }],
    ["refuses an IPv4-mapped answer", learn, "mapped.example", { allow: false, reason: "non_public_address" }],
    ["refuses a name with no answers", learn, "empty.example", { allow: false, reason: "non_public_address", detail: "no addresses" }],
    ["refuses a name that does not resolve", learn, "nx.example", { allow: false, reason: "resolve_failed", detail: "ENOTFOUND" }],
    ["checks IP literals without resolving them", learn, "0x7f.1", { allow: false, reason: "non_public_address", detail: "127.0.0.1 is loopback" }],
    ["refuses the metadata address in decimal", learn, "2852039166", { allow: false, reason: "non_public_address", detail: "169.254.169.254 is link_local" }],
    ["refuses NAT64 literals", learn, "[64:ff9b::a00:1]", { allow: false, reason: "non_public_address", detail: "64:ff9b::a00:1 is nat64" }],
    ["allows a public IP literal in Learn mode", learn, "198.20.0.12", { allow: true, address: "198.20.0.12" }],
    ["never resolves a denied host", strict, "other.example", { allow: false, reason: "not_allowlisted" }],
  ] as const)("%s", async (_title, snapshot, host, expected) => {
    expect(await decideEgress({ host, port: 443, via: "connect" }, snapshot, NOW, resolve)).toMatchObject(expected);
  });
});

describe("decideEgressNow", () => {
  const cachedAnswers: Record<string, string[]> = { "api.example": ["198.20.0.10"], "rebind.example": ["10.0.0.5"] };
  const resolve: Resolver = Object.assign(async () => ["198.20.0.99"], { cached: (name: string) => cachedAnswers[name] });

  it.each([
    ["a cached public answer decides at once", learn, "api.example", { allow: true, address: "198.20.0.10" }],
    ["a cached private answer is refused at once", learn, "rebind.example", { allow: false, reason: "non_public_address", detail: "10.0.0.5 is private" }],
    ["an IP literal needs no lookup", learn, "198.20.0.12", { allow: true, address: "198.20.0.12" }],
    ["a policy denial needs no lookup", strict, "other.example", { allow: false, reason: "not_allowlisted" }],
    ["an uncached name must be resolved first", learn, "other.example", { resolveName: { allow: true, host: { name: "other.example" } } }],
  ] as const)("%s", (_title, snapshot, host, expected) => {
    expect(decideEgressNow({ host, port: 443, via: "connect" }, snapshot, NOW, resolve)).toMatchObject(expected);
  });

  it("without a cache every allowed name waits for resolution, and decideEgress then gives the same checks", async () => {
    const plain: Resolver = async () => ["10.0.0.5"];
    expect(decideEgressNow({ host: "api.example", port: 443, via: "connect" }, learn, NOW, plain)).toHaveProperty("resolveName");
    expect(await decideEgress({ host: "api.example", port: 443, via: "connect" }, learn, NOW, plain)).toMatchObject({ allow: false, reason: "non_public_address" });
  });
});

describe("endpointMatches", () => {
  it.each([
    [{ host: "*.a.example", port: 443 }, "b.a.example", 443, true],
    [{ host: "*.a.example", port: 443 }, "a.example", 443, false],
    [{ host: "*.a.example", port: 443 }, "ba.example", 443, false],
    [{ host: "*.a.example", port: 443 }, "b.a.example", 80, false],
    [{ host: "a.example", port: 443 }, "a.example", 443, true],
    [{ host: "a.example", port: 443 }, "b.a.example", 443, false],
  ])("%j vs %s:%d → %s", (endpoint, host, port, expected) => {
    expect(endpointMatches(endpoint, host, port)).toBe(expected);
  });
});

describe("decisions on spelling variants (property)", () => {
  // Spellings a client or resolver treats as the same host: case, one trailing dot, fullwidth
  // letters/digits and ideographic full stops (UTS #46 maps them back).
  const toFullwidth = (ch: string): string => (/[a-z0-9]/.test(ch) ? String.fromCharCode(ch.charCodeAt(0) + 0xfee0) : ch);
  const variant = (host: string) =>
    fc
      .tuple(fc.array(fc.nat(3), { minLength: host.length, maxLength: host.length }), fc.boolean())
      .map(([choices, trailingDot]) => {
        let out = "";
        for (let i = 0; i < host.length; i++) {
          const ch = host[i];
          if (ch === ".") out += choices[i] === 0 ? "\u3002" : choices[i] === 1 ? "\uff0e" : ".";
          else out += choices[i] === 0 ? ch.toUpperCase() : choices[i] === 1 ? toFullwidth(ch) : ch;
        }
        return trailingDot ? `${out}.` : out;
      });

  it.each(["x.blocked.example", "exact.example", "other.example"])("never admits a spelling of %s that the canonical form refuses", (host) => {
    const canonical = decideByPolicy({ host, port: 443, via: "connect" }, strict, NOW);
    expect(canonical.allow).toBe(false);
    fc.assert(
      fc.property(variant(host), (spelling) => {
        const d = decideByPolicy({ host: spelling, port: 443, via: "connect" }, strict, NOW);
        expect(d.allow).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it("never admits an IPv4 spelling of a non-public address, whatever the mode", () => {
    const nonPublic = fc.constantFrom(0x7f000001, 0x0a000001, 0xa9fea9fe, 0xac100001, 0xc0a80101, 0x64400001, 0);
    const spell = fc.tuple(nonPublic, fc.constantFrom(1, 2, 3, 4), fc.constantFrom(8, 10, 16)).map(([value, parts, radix]) => {
      const bytes = [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255];
      const nums = parts === 1 ? [value >>> 0] : parts === 2 ? [bytes[0], value & 0xffffff] : parts === 3 ? [bytes[0], bytes[1], value & 0xffff] : bytes;
      return nums.map((n) => (radix === 16 ? `0x${n.toString(16)}` : radix === 8 ? `0${n.toString(8)}` : String(n))).join(".");
    });
    fc.assert(
      fc.asyncProperty(spell, async (host) => {
        const d = await decideEgress({ host, port: 443, via: "connect" }, learn, NOW, async () => []);
        expect(d).toMatchObject({ allow: false, reason: "non_public_address" });
      }),
      { numRuns: 500 },
    );
  });
});
