/** A listener address: host (no brackets) and port (0 = ephemeral). */
export interface ListenAddress {
  host: string;
  port: number;
}

/** DESIGN §2 defaults: API and egress on loopback only, ops on every interface (kubelet probes, Prometheus). */
export const DEFAULT_LISTEN = { api: "127.0.0.1:8443", egress: "127.0.0.1:8444", ops: ":9090" } as const;

/**
 * Parses `host:port`, `[v6]:port` or `:port` (all interfaces, 0.0.0.0). Throws Error on anything else
 * (the profile schema already restricts the shape; this also checks the port range).
 */
export function parseListenAddress(text: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/.exec(text);
  if (!m) throw new Error(`listen address ${JSON.stringify(text)}: expected host:port`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`listen address ${JSON.stringify(text)}: port out of range`);
  return { host: m[1] ?? (m[2] === "" ? "0.0.0.0" : m[2]), port };
}

/** `host:port` of a bound socket address, IPv6 in brackets (the form `LISTEN` lines print). */
export function formatAddress(address: { address: string; port: number; family?: string | number }): string {
  const v6 = address.address.includes(":");
  return v6 ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
}
