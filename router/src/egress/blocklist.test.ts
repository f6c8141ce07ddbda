import { Blocklist } from "./blocklist";
import { parseBlocklistText, unusableListReason } from "./blocklist-parse";
import { decodeListBytes } from "./blocklist-sources";

describe("parseBlocklistText", () => {
  it("reads the OISD domainswild format: *.domain is the domain and its subdomains, header kept", () => {
    const text = [
      "# Title: oisd big",
      "# Version: 202611300815",
      "# Last modified: 2026-11-30T08:15:00+0000",
      "# Syntax: Domains (including possible subdomains)",
      "*.ads.example",
      "*.Tracker.Example.",
      "",
    ].join("\n");
    expect(parseBlocklistText(text)).toEqual({
      wildcard: ["ads.example", "tracker.example"],
      exact: [],
      header: { title: "oisd big", version: "202611300815", lastModified: "2026-11-30T08:15:00+0000" },
      unparsedLines: 0,
    });
  });

  it("reads the Adblock Plus format: ||domain^ host rules; other rule kinds are counted, not fatal", () => {
    const text = [
      "[Adblock Plus]",
      "! Title: oisd small",
      "! Version: 202611300815",
      "! Last modified: 2026-11-30T08:15:00+0000",
      "||ads.example^",
      "||bücher-ads.example^",
      "@@||allowed.example^", // exception rule
      "example.com##.banner", // cosmetic rule
      "||example.com/path^", // path rule: not a host rule
      "||example.org^$third-party", // options narrow it; refuse to guess
    ].join("\r\n");
    const parsed = parseBlocklistText(text);
    expect(parsed.wildcard).toEqual(["ads.example", "xn--bcher-ads-q9a.example"]);
    expect(parsed.header).toEqual({ title: "oisd small", version: "202611300815", lastModified: "2026-11-30T08:15:00+0000" });
    expect(parsed.unparsedLines).toBe(4);
  });

  it("reads the URLhaus hosts format: exact hosts; localhost self-entries skipped", () => {
    const text = [
      "# abuse.ch URLhaus Host file",
      "# Last updated: 2026-11-30 08:00:00 (UTC)",
      "127.0.0.1\tlocalhost",
      "127.0.0.1 malware.example",
      "0.0.0.0 phish.example # trailing comment",
      ":: v6sink.example",
      "127.0.0.1 203.0.113.7", // hosts files list IPs too
      "not-an-ip host.example",
    ].join("\n");
    const parsed = parseBlocklistText(text);
    expect(parsed.exact).toEqual(["malware.example", "phish.example", "v6sink.example", "203.0.113.7"]);
    expect(parsed.wildcard).toEqual([]);
    expect(parsed.header.lastModified).toBe("2026-11-30 08:00:00 (UTC)");
    expect(parsed.unparsedLines).toBe(1);
  });

  it("reads dnsmasq lines: address=/server=/local= with one or more domains", () => {
    const text = ["address=/ads.example/0.0.0.0", "server=/a.example/b.example/", "local=/c.example/", "address=/#/0.0.0.0"].join("\n");
    const parsed = parseBlocklistText(text);
    expect(parsed.wildcard).toEqual(["ads.example", "a.example", "b.example", "c.example"]);
    expect(parsed.unparsedLines).toBe(1); // "#" (everything) is not a domain
  });

  it("reads plain domain lists as exact hosts, and counts invalid lines", () => {
    const parsed = parseBlocklistText("one.example\nTWO.example\nbad..example\n-x.example\n");
    expect(parsed.exact).toEqual(["one.example", "two.example"]);
    expect(parsed.unparsedLines).toBe(2);
  });

  it.each([
    ["LF", "\n"],
    ["CRLF", "\r\n"],
    ["a CR alone (old Mac files; helper-21: one long unparsed line before)", "\r"],
  ])("ends lines at %s", (_title, eol) => {
    const parsed = parseBlocklistText(["# Title: t", "*.ads.example", "0.0.0.0 bad.example", ""].join(eol));
    expect([parsed.wildcard, parsed.exact, parsed.unparsedLines, parsed.header.title]).toEqual([["ads.example"], ["bad.example"], 0, "t"]);
  });

  it.each<[string, Buffer]>([
    ["UTF-8", Buffer.from("*.ads.example\r\nbad.example\r\n")],
    ["UTF-8 with a byte order mark", Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from("*.ads.example\nbad.example\n")])],
    ["UTF-16LE with a byte order mark (PowerShell Out-File)", Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from("*.ads.example\r\nbad.example\r\n", "utf16le")])],
    ["UTF-16BE with a byte order mark", Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from("*.ads.example\nbad.example\n", "utf16le").swap16()])],
  ])("decodes a list saved as %s", (_title, bytes) => {
    const parsed = parseBlocklistText(decodeListBytes(bytes));
    expect([parsed.wildcard, parsed.exact, parsed.unparsedLines]).toEqual([["ads.example"], ["bad.example"], 0]);
  });

  it.each<[string, string, boolean]>([
    ["a list no line of which could be read", "<html>not found</html>\n<body>\n", true],
    ["UTF-16 read as UTF-8 (no byte order mark)", Buffer.from("bad.example\n", "utf16le").toString("utf8"), true],
    ["a list of comments only (blocks nothing, on purpose)", "# nothing yet\n", false],
    ["an empty list", "", false],
    ["a list with some bad lines", "good.example\nbad..example\n", false],
  ])("judges %s unusable: %s", (_title, text, unusable) => {
    expect(unusableListReason(parseBlocklistText(text)) !== undefined).toBe(unusable);
  });
});

describe("Blocklist.match", () => {
  const list = new Blocklist([
    parseBlocklistText("*.ads.example\n||tracker.example^\naddress=/dns.example/0.0.0.0"),
    parseBlocklistText("0.0.0.0 exact.example\n127.0.0.1 203.0.113.7\nplain.example"),
  ]);

  it.each([
    ["ads.example", { matched: true, entry: "ads.example", kind: "wildcard" }, "the wildcard's own domain"],
    ["x.ads.example", { matched: true, entry: "ads.example", kind: "wildcard" }, "a subdomain"],
    ["a.b.c.ads.example", { matched: true, entry: "ads.example", kind: "wildcard" }, "a deep subdomain"],
    ["x.tracker.example", { matched: true, entry: "tracker.example", kind: "wildcard" }, "ABP rules cover subdomains"],
    ["x.dns.example", { matched: true, entry: "dns.example", kind: "wildcard" }, "dnsmasq rules cover subdomains"],
    ["exact.example", { matched: true, entry: "exact.example", kind: "exact" }, "a hosts-file entry"],
    ["203.0.113.7", { matched: true, entry: "203.0.113.7", kind: "exact" }, "an IP from a hosts file"],
    ["plain.example", { matched: true, entry: "plain.example", kind: "exact" }, "a plain entry"],
    ["sub.exact.example", { matched: false }, "hosts-file entries are exact"],
    ["sub.plain.example", { matched: false }, "plain entries are exact"],
    ["thisads.example", { matched: false }, "label boundaries are respected"],
    ["ads.example.com", { matched: false }, "a suffix elsewhere is not a parent"],
    ["example", { matched: false }, "a parent of an entry is not blocked"],
    ["113.7", { matched: false }, "IP literals have no parents"],
  ] as [string, object, string][])("matches %s → %j (%s)", (host, expected) => {
    expect(list.match(host)).toEqual(expected);
  });

  it("counts distinct entries across lists", () => {
    expect(list.size).toBe(6);
    expect(Blocklist.empty().has("anything.example")).toBe(false);
  });
});
