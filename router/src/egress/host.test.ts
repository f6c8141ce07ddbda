import fc from "fast-check";
import { normaliseHost, splitAuthority } from "./host";

describe("normaliseHost", () => {
  it.each([
    // [input, kind, canonical name, note]
    ["example.com", "name", "example.com"],
    ["EXAMPLE.Com", "name", "example.com"],
    ["example.com.", "name", "example.com"], // one trailing dot
    ["bücher.example", "name", "xn--bcher-kva.example"], // IDNA
    ["BÜCHER.example", "name", "xn--bcher-kva.example"],
    ["xn--bcher-kva.example", "name", "xn--bcher-kva.example"],
    ["example。com", "name", "example.com"], // ideographic full stop maps to "."
    ["ｅｘａｍｐｌｅ.com", "name", "example.com"], // fullwidth letters
    ["_dmarc.example.com", "name", "_dmarc.example.com"],
    ["127.0.0.1", "ipv4", "127.0.0.1"],
    ["2130706433", "ipv4", "127.0.0.1"], // one decimal number
    ["0x7f000001", "ipv4", "127.0.0.1"], // one hex number
    ["017700000001", "ipv4", "127.0.0.1"], // one octal number
    ["0x7f.1", "ipv4", "127.0.0.1"], // short hex form
    ["127.1", "ipv4", "127.0.0.1"], // short dotted form
    ["127.0.1", "ipv4", "127.0.0.1"],
    ["0177.0.0.01", "ipv4", "127.0.0.1"], // octal parts
    ["0xA9.0xFE.0xA9.0xFE", "ipv4", "169.254.169.254"],
    ["0xa9fea9fe", "ipv4", "169.254.169.254"],
    ["2852039166", "ipv4", "169.254.169.254"],
    ["169.254.169.254.", "ipv4", "169.254.169.254"], // trailing dot
    ["0", "ipv4", "0.0.0.0"],
    ["0x", "ipv4", "0.0.0.0"], // WHATWG: "0x" alone is zero
    ["１２７.０.０.１", "ipv4", "127.0.0.1"], // fullwidth digits map to an IP literal, not a name
    ["[::1]", "ipv6", "::1"],
    ["::1", "ipv6", "::1"],
    ["[0:0:0:0:0:ffff:7f00:1]", "ipv6", "::ffff:7f00:1"],
    ["[::ffff:127.0.0.1]", "ipv6", "::ffff:7f00:1"],
    ["[2001:DB9::10]", "ipv6", "2001:db9::10"],
  ])("normalises %s to %s %s", (input, kind, name) => {
    expect(normaliseHost(input)).toEqual({ ok: true, host: { kind, name } });
  });

  it.each([
    ["", "empty"],
    ["a".repeat(2000), "too_long"],
    [`${"a".repeat(63)}.`.repeat(5) + "com", "too_long"],
    ["exa mple.com", "bad_character"],
    ["example.com/path", "bad_character"],
    ["user@example.com", "bad_character"],
    ["example.com%00", "bad_character"],
    ["example.com\u0000", "bad_character"],
    ["ex\\ample.com", "bad_character"],
    ["example.com:443", "bad_character"], // ports are split off before normalising
    ["[fe80::1%25eth0]", "zone_id"],
    ["fe80::1%eth0", "zone_id"],
    ["[1.2.3.4]", "bad_ip_literal"],
    ["[::1", "bad_ip_literal"],
    ["256.0.0.1", "bad_ip_literal"], // numeric last label → must be a valid address
    ["1.2.3.4.5", "bad_ip_literal"],
    ["0x100000000", "bad_ip_literal"],
    ["example.09", "bad_ip_literal"], // "09" is invalid octal, but still numeric-looking
    ["example.123", "bad_ip_literal"],
    ["a..b", "bad_label"],
    ["-a.example", "bad_label"],
    [`${"a".repeat(64)}.com`, "bad_label"],
    ["\ud800.example", "bad_idna"], // lone surrogate
    ["\u00ad.example", "bad_label"], // soft hyphen maps to nothing: empty label
    ["example.com..", "bad_label"],
  ])("refuses %j (%s)", (input, reason) => {
    expect(normaliseHost(input)).toEqual({ ok: false, reason });
  });

  it("never throws, and is idempotent on what it accepts (property)", () => {
    const chars = fc.constantFrom(..."aAzZ09.-_:[]%@/\\xX\u00fc\u3002\uff0e\uff41 \u0000\u00ad\u200b".split(""));
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: chars, maxLength: 40 }), fc.domain(), fc.ipV4(), fc.ipV6(), fc.ipV4Extended()), (input) => {
        const first = normaliseHost(input);
        if (first.ok) {
          const again = normaliseHost(first.host.kind === "ipv6" ? `[${first.host.name}]` : first.host.name);
          expect(again).toEqual(first);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("maps every spelling of an IPv4 address to the address itself (property)", () => {
    fc.assert(
      fc.property(fc.ipV4Extended(), (spelling) => {
        const r = normaliseHost(spelling);
        // WHATWG and inet_aton agree on these spellings; the canonical form re-parses to itself
        expect(r.ok && r.host.kind).toBe("ipv4");
      }),
      { numRuns: 2000 },
    );
  });

  it("agrees with the WHATWG URL parser on every host it accepts (canonical comparison, property)", () => {
    fc.assert(
      fc.property(fc.oneof(fc.domain(), fc.ipV4Extended(), fc.string({ unit: fc.constantFrom(..."aB0x7.\u3002\uff10".split("")), maxLength: 20 })), (input) => {
        const ours = normaliseHost(input);
        let theirs: string | undefined;
        try {
          theirs = new URL(`http://${input}/`).hostname;
        } catch {
          theirs = undefined;
        }
        if (ours.ok && ours.host.kind !== "ipv6") {
          // Whatever we accept, a URL-parsing client would reach the same host.
          expect(theirs?.replace(/\.$/, "")).toBe(ours.host.name);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe("splitAuthority", () => {
  it.each([
    ["example.com:443", undefined, { host: "example.com", port: 443 }],
    ["[::1]:8443", undefined, { host: "[::1]", port: 8443 }],
    ["example.com", 80, { host: "example.com", port: 80 }],
    ["[::1]", 80, { host: "[::1]", port: 80 }],
  ])("splits %s", (authority, defaultPort, expected) => {
    expect(splitAuthority(authority, defaultPort)).toEqual(expected);
  });
  it.each([
    ["example.com", undefined], // CONNECT needs a port
    ["example.com:0", undefined],
    ["example.com:65536", undefined],
    ["example.com:+443", undefined],
    ["example.com:44a", undefined],
    ["::1:443", undefined], // IPv6 must be bracketed
    ["[::1]443", undefined],
    ["[::1", undefined],
  ])("refuses %s", (authority, defaultPort) => {
    expect(splitAuthority(authority, defaultPort)).toBeUndefined();
  });
});
