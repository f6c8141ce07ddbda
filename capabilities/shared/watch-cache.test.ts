import { shedManagedFields } from "./watch-cache";

describe("shedManagedFields", () => {
  it.each([
    ["drops managedFields in place, keeps the rest", { metadata: { name: "a", resourceVersion: "7", uid: "u", labels: { x: "1" }, managedFields: [{ manager: "kars" }] }, spec: { a: 1 } }, { metadata: { name: "a", resourceVersion: "7", uid: "u", labels: { x: "1" } }, spec: { a: 1 } }],
    ["an object without managedFields is unchanged", { metadata: { name: "a" } }, { metadata: { name: "a" } }],
    ["no metadata", { spec: {} }, { spec: {} }],
    ["metadata that is not an object", { metadata: "x" }, { metadata: "x" }],
    ["null", null, null],
    ["undefined", undefined, undefined],
  ])("%s", (_what, input: unknown, expected: unknown) => {
    const same = shedManagedFields(input);
    expect(same).toBe(input);
    expect(same).toEqual(expected);
  });
});
