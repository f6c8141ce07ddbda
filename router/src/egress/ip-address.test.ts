import { classifyAddress, formatIPv6, parseIPv4, parseIPv6 } from "./ip-address";

describe("classifyAddress", () => {
  it.each([
    // [address, expected reason or "public", note]
    ["0.0.0.0", "unspecified"],
    ["0.1.2.3", "unspecified"], // "this network" 0/8
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["10.0.0.1", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.1.1", "private"],
    ["100.64.0.1", "cgnat"],
    ["100.127.255.255", "cgnat"],
    ["169.254.169.254", "link_local"], // cloud metadata
    ["169.254.0.1", "link_local"],
    ["192.0.0.8", "reserved"],
    ["192.0.2.1", "documentation"],
    ["198.51.100.1", "documentation"],
    ["203.0.113.1", "documentation"],
    ["198.18.0.1", "benchmarking"],
    ["198.19.255.255", "benchmarking"],
    ["192.88.99.1", "6to4"],
    ["224.0.0.1", "multicast"],
    ["239.255.255.255", "multicast"],
    ["240.0.0.1", "reserved"],
    ["255.255.255.255", "broadcast"],
    ["8.8.8.8", "public"],
    ["100.63.255.255", "public"], // just below CGNAT
    ["100.128.0.0", "public"], // just above CGNAT
    ["172.15.255.255", "public"],
    ["172.32.0.0", "public"],
    ["198.20.0.10", "public"], // the integration tests' stand-in public range
    ["::", "unspecified"],
    ["::1", "loopback"],
    ["::ffff:127.0.0.1", "ipv4_mapped"],
    ["::ffff:8.8.8.8", "ipv4_mapped"], // refused whatever it embeds
    ["::ffff:0:a00:1", "ipv4_mapped"], // SIIT form
    ["::10.0.0.1", "ipv4_mapped"], // deprecated IPv4-compatible
    ["64:ff9b::a00:1", "nat64"],
    ["64:ff9b::8.8.8.8", "nat64"],
    ["64:ff9b:1::1", "nat64"], // RFC 8215 local-use
    ["2002:a00:1::1", "6to4"],
    ["2002:808:808::1", "6to4"],
    ["2001:0:4136:e378:8000:63bf:3fff:fdd2", "teredo"],
    ["2001:db8::1", "documentation"],
    ["3fff::1", "documentation"],
    ["2001:2::1", "benchmarking"],
    ["2001:10::1", "reserved"], // ORCHID
    ["2001:1::1", "reserved"], // rest of 2001::/23
    ["fe80::1", "link_local"],
    ["febf::1", "link_local"],
    ["fec0::1", "reserved"], // site-local
    ["fc00::1", "unique_local"],
    ["fd12:3456::1", "unique_local"],
    ["ff02::1", "multicast"],
    ["100::1", "reserved"], // discard-only, outside 2000::/3
    ["4000::1", "reserved"], // outside 2000::/3
    ["2606:4700::1111", "public"],
    ["2001:db9::10", "public"], // the integration tests' stand-in public range
    ["2001:200::1", "public"], // first block past 2001::/23
    ["not-an-ip", "unparseable"],
    ["1.2.3", "unparseable"], // lenient forms are normaliseHost's job, never accepted here
    ["fe80::1%eth0", "unparseable"], // zone ids
  ])("classifies %s as %s", (address, expected) => {
    const c = classifyAddress(address);
    expect(c.public ? "public" : c.reason).toBe(expected);
  });
});

describe("parseIPv6 / formatIPv6", () => {
  it.each([
    ["::", "::"],
    ["::1", "::1"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["2001:DB8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["::ffff:1.2.3.4", "::ffff:102:304"],
    ["1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"],
    ["1:0:0:2::3", "1:0:0:2::3"], // the longest zero run wins
    ["1:0:0:2:0:0:3:4", "1::2:0:0:3:4"], // equal runs: the first
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
  ])("round-trips %s as %s", (text, canonical) => {
    const groups = parseIPv6(text);
    expect(groups).toBeDefined();
    expect(formatIPv6(groups as number[])).toBe(canonical);
  });

  it.each(["1::2::3", "12345::", "1.2.3.4", "::g", ":::", "fe80::1%1"])("rejects %s", (text) => {
    expect(parseIPv6(text)).toBeUndefined();
  });
});

describe("parseIPv4", () => {
  it.each([
    ["1.2.3.4", 0x01020304],
    ["255.255.255.255", 0xffffffff],
    ["169.254.169.254", 0xa9fea9fe],
  ])("parses %s", (text, value) => expect(parseIPv4(text)).toBe(value));
  it.each(["1.2.3", "0x1.2.3.4", "256.1.1.1", "01.2.3.4", ""])("rejects the non-canonical %s", (text) => expect(parseIPv4(text)).toBeUndefined());
});
