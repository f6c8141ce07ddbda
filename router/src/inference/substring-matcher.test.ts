import { noMatch, SubstringMatcher } from "./substring-matcher";

/** The longest suffix of `text` (after each character) that is a substring of one of `secrets`, by brute force. */
function naive(secrets: string[], text: string): number[] {
  return [...text].map((_c, i) => {
    for (let len = i + 1; len > 0; len--) if (secrets.some(s => s.includes(text.slice(i + 1 - len, i + 1)))) return len;
    return 0;
  });
}

function lengths(secrets: string[], text: string): number[] {
  const m = new SubstringMatcher(secrets);
  const at = noMatch();
  return [...text].map(c => m.advance(at, c.charCodeAt(0)));
}

describe("SubstringMatcher", () => {
  it.each<[string, string[], string]>([
    ["a secret read whole", ["sk-abcdef0123456789"], "xx sk-abcdef0123456789 yy"],
    ["a piece from the middle", ["sk-abcdef0123456789"], "cdef012"],
    ["a mismatch restarts on the longest suffix that still matches", ["abcabd"], "abcabcabd"],
    ["repetitive secrets (clones in the automaton)", ["aabaaab", "abab"], "aababaaabaabab"],
    ["two secrets: a piece of either", ["AAAAtoken1", "zzzzkey2"], "AAtok zzkey2 AAAAtoken1zzzz"],
    ["no run across the separator of two secrets", ["abc", "def"], "abcdef"],
    ["no secret at all", [], "anything"],
    ["non-ASCII text", ["ключ-секрет-123"], "мой ключ-секрет-12 и"],
  ])("%s", (_t, secrets, text) => {
    expect(lengths(secrets, text)).toEqual(naive(secrets, text));
  });

  it("agrees with brute force on random text over a small alphabet", () => {
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const word = (n: number) => Array.from({ length: n }, () => "abc"[rnd(3)]).join("");
    for (let round = 0; round < 200; round++) {
      const secrets = [word(1 + rnd(12)), word(1 + rnd(12))];
      const text = word(40);
      expect(lengths(secrets, text)).toEqual(naive(secrets, text));
    }
  });
});
