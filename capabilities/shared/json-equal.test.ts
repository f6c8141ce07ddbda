import { canonical, sameJson } from "./json-equal";

describe("sameJson", () => {
  it.each([
    ["key order does not matter", { a: 1, b: [1, { c: 2, d: 3 }] }, { b: [1, { d: 3, c: 2 }], a: 1 }, true],
    ["undefined members are ignored", { a: 1, b: undefined }, { a: 1 }, true],
    ["array order matters", [1, 2], [2, 1], false],
    ["values differ", { a: "1" }, { a: 1 }, false],
    ["an extra key differs", { a: 1 }, { a: 1, b: null }, false],
  ])("%s", (_t, a, b, want) => {
    expect(sameJson(a, b)).toBe(want);
  });
  it("renders a canonical string", () => {
    expect(canonical({ b: 1, a: [true, "x"] })).toBe('{"a":[true,"x"],"b":1}');
  });
});
