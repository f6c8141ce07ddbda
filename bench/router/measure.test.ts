import { quantile } from "./measure";

describe("quantile", () => {
  it.each<[number[], number, number]>([
    [[5, 1, 3, 2, 4], 0.5, 3],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.99, 10],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9, 9],
    [[7], 0.5, 7],
  ])("quantile(%p, %p) = %p", (xs, q, v) => {
    expect(quantile(xs, q)).toBe(v);
  });
  it("is NaN for no samples", () => {
    expect(quantile([], 0.5)).toBeNaN();
  });
});
