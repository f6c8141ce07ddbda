import { formatAddress, parseListenAddress } from "./listen-address";

describe("parseListenAddress", () => {
  it.each<[string, { host: string; port: number } | RegExp]>([
    ["127.0.0.1:8443", { host: "127.0.0.1", port: 8443 }],
    [":9090", { host: "0.0.0.0", port: 9090 }],
    ["[::1]:0", { host: "::1", port: 0 }],
    ["localhost:1", { host: "localhost", port: 1 }],
    ["127.0.0.1", /expected host:port/],
    ["127.0.0.1:70000", /port out of range/],
  ])("%s", (text, expected) => {
    if (expected instanceof RegExp) expect(() => parseListenAddress(text)).toThrow(expected);
    else expect(parseListenAddress(text)).toEqual(expected);
  });
});

describe("formatAddress", () => {
  it("brackets IPv6", () => {
    expect([formatAddress({ address: "::1", port: 5 }), formatAddress({ address: "127.0.0.1", port: 5 })]).toEqual(["[::1]:5", "127.0.0.1:5"]);
  });
});
