// Blocklist text parsing. One parser for the formats blocklists are published in (PITFALLS
// "Blocklist formats"), decided line by line so that a file mixing them still loads:
// - OISD "domains (wildcards)": `*.example.com` = the domain and all its subdomains;
// - Adblock Plus (OISD "abp"): `[Adblock Plus]` header, `!` comments, `||example.com^` = the domain
//   and all its subdomains (other ABP rule kinds — cosmetic, exceptions, paths — are not host rules
//   and are counted as unparsed);
// - dnsmasq: `address=/example.com/0.0.0.0`, `server=/example.com/`, `local=/example.com/` = the
//   domain(s) and all subdomains;
// - hosts files (URLhaus): `0.0.0.0 host` / `127.0.0.1 host [host...]` = exactly those hosts;
// - plain domains: `example.com` = exactly that host.
// `#` starts a comment (a whole line, or after whitespace). Lines that fit none of these are counted, never fatal.

import { normaliseHost } from "./host";

/** Header fields kept from a list's comment block (for staleness reporting). */
export interface BlocklistHeader {
  title?: string;
  version?: string;
  /** The list's own "Last modified"/"Last updated" value, as written. */
  lastModified?: string;
}

/** What one list file contributed. Hosts are canonical (see `normaliseHost`). */
export interface ParsedBlocklist {
  /** Hosts blocked with all their subdomains. */
  wildcard: string[];
  /** Hosts blocked exactly (no subdomains); may include IP literals from hosts files. */
  exact: string[];
  header: BlocklistHeader;
  /** Non-comment lines that matched no supported syntax or held an invalid host. */
  unparsedLines: number;
}

// Names a hosts file maps to itself; never a blocklist entry.
const HOSTS_FILE_SELF = new Set(["localhost", "localhost.localdomain", "local", "broadcasthost", "ip6-localhost", "ip6-loopback", "0.0.0.0"]);
// Already-canonical names: LDH labels (no leading/trailing hyphen), alphabetic TLD.
const FAST_NAME = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const HEADER_FIELD = /^[#!]\s*(title|version|last modified|last updated|updated)\s*:\s*(.+?)\s*$/i;

/** Parses one list file's text. Never throws; see the module comment for the syntaxes. */
export function parseBlocklistText(text: string): ParsedBlocklist {
  const out: ParsedBlocklist = { wildcard: [], exact: [], header: {}, unparsedLines: 0 };
  // lines end at LF, CRLF (the CR is trimmed with the line) or a CR alone (old Mac line endings: such a
  // file would otherwise be one long unparsed line), turned into LF first
  if (/\r(?!\n)/.test(text)) text = text.replace(/\r\n?/g, "\n");
  let start = 0;
  const n = text.length;
  while (start < n) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = n;
    parseLine(text.slice(start, end), out);
    start = end + 1;
  }
  return out;
}

/**
 * Why a parsed list is no use: it has lines but not one entry could be read (another format, or a text
 * encoding read wrongly), which would leave the blocklist quietly without it. Undefined when usable (a
 * list of comments only is usable: it blocks nothing on purpose).
 */
export function unusableListReason(parsed: ParsedBlocklist): string | undefined {
  if (parsed.exact.length + parsed.wildcard.length > 0 || parsed.unparsedLines === 0) return undefined;
  return `no entry could be read from its ${parsed.unparsedLines} lines (not a supported list format or text encoding)`;
}

function parseLine(raw: string, out: ParsedBlocklist): void {
  const line = raw.trim();
  if (line === "") return;
  const c = line[0];
  if (c === "#" || c === "!") {
    const field = HEADER_FIELD.exec(line);
    if (field) {
      const key = field[1].toLowerCase();
      if (key === "title") out.header.title ??= field[2];
      else if (key === "version") out.header.version ??= field[2];
      else out.header.lastModified ??= field[2];
    }
    return;
  }
  if (c === "[") return; // "[Adblock Plus 2.0]" header
  // A trailing comment needs whitespace before "#": "example.com##.banner" is an ABP cosmetic rule.
  const hash = line.search(/\s#/);
  const body = (hash >= 0 ? line.slice(0, hash) : line).trim();
  if (body === "") return;

  if (body.startsWith("||")) {
    // ABP host rule: ||host^ with no path and no options (options would narrow it; refuse to guess).
    const m = /^\|\|([^/^$|*]+)\^$/.exec(body);
    if (!m || !addHost(m[1], out.wildcard)) out.unparsedLines++;
    return;
  }
  if (body.startsWith("*.")) {
    if (!addHost(body.slice(2), out.wildcard)) out.unparsedLines++;
    return;
  }
  const dnsmasq = /^(?:address|server|local)=\/(.+)\/[^/]*$/.exec(body);
  if (dnsmasq) {
    const domains = dnsmasq[1].split("/");
    for (const d of domains) if (!addHost(d, out.wildcard)) out.unparsedLines++;
    return;
  }
  const fields = body.split(/\s+/);
  if (fields.length >= 2) {
    // hosts-file line: first field is the sink address the list maps names to.
    const sink = normaliseHost(fields[0]);
    if (!sink.ok || sink.host.kind === "name") {
      out.unparsedLines++;
      return;
    }
    for (const name of fields.slice(1)) {
      if (HOSTS_FILE_SELF.has(name.toLowerCase())) continue;
      if (!addHost(name, out.exact)) out.unparsedLines++;
    }
    return;
  }
  if (!addHost(body, out.exact)) out.unparsedLines++;
}

function addHost(text: string, into: string[]): boolean {
  // Fast path for the overwhelmingly common already-canonical entry; normaliseHost does the rest.
  if (FAST_NAME.test(text) && text.length <= 253 && !text.includes("xn--")) {
    into.push(text);
    return true;
  }
  const result = normaliseHost(text);
  if (!result.ok) return false;
  into.push(result.host.name);
  return true;
}
