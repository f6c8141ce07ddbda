// DESIGN §2 egress-guard, on a real kernel: the script runs in a fresh "pod" network namespace and
// the rules are then exercised by processes running as the agent (UID 1000) and the router
// (UID 1001), over IPv4 and IPv6. See egress-support/testbed.ts for the topology and addresses.
import {
  AGENT_UID,
  DNS_V4,
  DNS_V6,
  EgressTestbed,
  METADATA_V4,
  OTHER_DNS_V4,
  OTHER_DNS_V6,
  decisionsContaining,
  requireKernelFacilities,
  ROUTER_UID,
  WEB_V4,
  WEB_V6,
} from "./egress-support/testbed";

jest.setTimeout(120_000);

const bed = new EgressTestbed();

beforeAll(async () => {
  await requireKernelFacilities();
  await bed.setup();
  const guard = await bed.guard();
  if (guard.code !== 0) throw new Error(`egress-guard failed: ${guard.stderr}`);
  bed.writeConfig({ egressMode: "Strict", allowedEndpoints: [{ host: "allowed.test", port: 443 }, { host: "allowed.test", port: 80 }] });
  await bed.startProxy();
});

afterAll(async () => {
  await bed.teardown();
});

describe("egress-guard rules for the agent (UID 1000)", () => {
  it.each([
    ["IPv4 web server on a port that is not redirected", WEB_V4, "8080"],
    ["IPv6 web server on a port that is not redirected", WEB_V6, "8080"],
    ["IPv4 metadata address on a port that is not redirected", METADATA_V4, "8080"],
    ["IPv4 DNS server address on a non-DNS port", DNS_V4, "8080"],
  ])("cannot open a direct TCP connection to the %s", async (_title, host, port) => {
    expect(await bed.probe(AGENT_UID, "tcp", host, port)).toEqual({ ok: false, error: "timeout" });
  });

  it.each([
    ["IPv4", DNS_V4],
    ["IPv6", DNS_V6],
  ])("can query the cluster DNS service over %s", async (_family, server) => {
    const r = await bed.probe(AGENT_UID, "dns", server, "allowed.test");
    expect(r).toMatchObject({ ok: true });
    expect(r.addresses).toEqual(expect.arrayContaining([WEB_V4, WEB_V6]));
  });

  it.each([
    ["IPv4", OTHER_DNS_V4],
    ["IPv6", OTHER_DNS_V6],
  ])("cannot query any other DNS server over %s (no DNS exfiltration channel)", async (_family, server) => {
    expect(await bed.probe(AGENT_UID, "dns", server, "allowed.test")).toMatchObject({ ok: false });
  });

  it("can reach loopback (the router's API and proxy)", async () => {
    expect(await bed.probe(AGENT_UID, "tcp", "127.0.0.1", "8444")).toEqual({ ok: true });
    expect(await bed.probe(AGENT_UID, "tcp", "::1", "8444")).toEqual({ ok: true });
  });

  it.each([
    ["IPv4", "-4"],
    ["IPv6", "-6"],
  ])("has TCP 80 redirected into the proxy over %s, which serves an allowed host", async (_family, flag) => {
    const r = await bed.curl(AGENT_UID, [flag, "http://allowed.test/"]);
    expect(r.stdout).toMatch(/^hello from .* host=allowed\.test/);
  });

  it.each([
    ["IPv4", "-4"],
    ["IPv6", "-6"],
  ])("has TCP 443 redirected into the proxy over %s (host from SNI)", async (_family, flag) => {
    const r = await bed.curl(AGENT_UID, [flag, "https://allowed.test/"]);
    expect(r.stdout).toMatch(/^hello from .* host=allowed\.test/);
    expect(await decisionsContaining(bed, { via: "tls", allow: true, host: "allowed.test" })).toContainEqual(expect.objectContaining({ via: "tls", allow: true, host: "allowed.test" }));
  });

  it.each([
    ["IPv4", "-4"],
    ["IPv6", "-6"],
  ])("gets a redirected request for a host outside the allowlist refused by the proxy over %s", async (_family, flag) => {
    const r = await bed.curl(AGENT_UID, [flag, "-o", "/dev/null", "-w", "%{http_code}", "-D", "-", "http://other.test/"]);
    expect(r.stdout).toMatch(/x-kars-egress-reason: not_allowlisted/i);
    expect(r.stdout.trim().endsWith("403")).toBe(true);
  });

  it("cannot reach the metadata address on port 80: the redirect lands in the proxy, which refuses it", async () => {
    const r = await bed.curl(AGENT_UID, ["-o", "/dev/null", "-D", "-", `http://${METADATA_V4}/latest/meta-data/`]);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 403/);
    expect(r.stdout).not.toMatch(/hello from/);
  });
});

describe("the router (UID 1001) is not restricted by the guard", () => {
  it.each([
    ["IPv4", WEB_V4],
    ["IPv6", WEB_V6],
  ])("reaches the internet namespace directly over %s", async (_family, host) => {
    expect(await bed.probe(ROUTER_UID, "tcp", host, "8080")).toEqual({ ok: true });
    expect(await bed.probe(ROUTER_UID, "dns", OTHER_DNS_V4, "allowed.test")).toMatchObject({ ok: true });
  });
});

describe("the egress-guard script", () => {
  it("is idempotent: a second run leaves exactly the same rules", async () => {
    const before = await bed.asUser(0, "sh", ["-c", "iptables-save | grep '^-A'; ip6tables-save | grep '^-A'"]);
    const again = await bed.guard();
    const after = await bed.asUser(0, "sh", ["-c", "iptables-save | grep '^-A'; ip6tables-save | grep '^-A'"]);
    expect(again.code).toBe(0);
    expect(after.stdout).toBe(before.stdout);
    expect(after.stdout.match(/-j KARS-EGRESS$/gm)).toHaveLength(2);
  });

  it.each([
    ["no DNS servers configured", {}, /KARS_DNS_SERVERS is empty/],
    ["a DNS entry that is a name (iptables would resolve it)", { KARS_DNS_SERVERS: "dns.example" }, /not an IPv4 or IPv6 address/],
    ["a DNS address iptables rejects", { KARS_DNS_SERVERS: "1.2.3.999" }, /FATAL: rule failed: iptables .*1\.2\.3\.999/],
    ["a non-numeric agent UID", { KARS_DNS_SERVERS: DNS_V4, KARS_AGENT_UID: "agent" }, /KARS_AGENT_UID must be a number/],
    ["IPv6 switched off on a kernel that has it", { KARS_DNS_SERVERS: DNS_V4, KARS_IPV6: "off" }, /refusing to leave IPv6 unfiltered/],
  ])("fails loudly with %s", async (_title, env, message) => {
    const r = await bed.guard(env as Record<string, string>);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
    await bed.guard(); // restore the good rules for the other cases
  });
});
