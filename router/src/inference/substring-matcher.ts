/**
 * Recognises, character by character, how long the text read so far ends in a piece of one of a few
 * secrets: a suffix automaton (Blumer et al. 1985, "The smallest automaton recognizing the subwords of
 * a text") over the secrets joined by NUL separators. Stepping costs O(1) amortised per character,
 * whatever the secrets' length (an Entra access token is 1–3 KiB), and building one costs O(total
 * length). Characters are UTF-16 code units, as in JavaScript strings.
 */

/** Where a match stands: the automaton `state` and the `length` (characters) of the longest suffix of the text read that is a substring of a secret. */
export interface MatchState {
  state: number;
  length: number;
}

/** The state before any text: nothing matched. */
export function noMatch(): MatchState {
  return { state: 0, length: 0 };
}

export class SubstringMatcher {
  /** Longest string ending in each state (characters). */
  private readonly len: number[] = [0];
  /** Suffix link of each state (-1 for the initial state). */
  private readonly link: number[] = [-1];
  /** Transitions of each state, by UTF-16 code unit. */
  private readonly next: Map<number, number>[] = [new Map()];

  /** Builds the automaton of every substring of `secrets` (none of which should contain NUL; a match across one is only ever longer redaction). */
  constructor(secrets: readonly string[]) {
    let last = 0;
    const add = (c: number): void => {
      const cur = this.newState(this.len[last] + 1, -1);
      let p = last;
      while (p !== -1 && !this.next[p].has(c)) {
        this.next[p].set(c, cur);
        p = this.link[p];
      }
      if (p === -1) this.link[cur] = 0;
      else {
        const q = this.next[p].get(c) as number;
        if (this.len[p] + 1 === this.len[q]) this.link[cur] = q;
        else {
          const clone = this.newState(this.len[p] + 1, this.link[q]);
          for (const [k, v] of this.next[q]) this.next[clone].set(k, v);
          while (p !== -1 && this.next[p].get(c) === q) {
            this.next[p].set(c, clone);
            p = this.link[p];
          }
          this.link[q] = clone;
          this.link[cur] = clone;
        }
      }
      last = cur;
    };
    secrets.forEach((secret, i) => {
      if (i > 0) add(0);
      for (let k = 0; k < secret.length; k++) add(secret.charCodeAt(k));
    });
  }

  /**
   * Reads one more character `code` (a UTF-16 code unit) after the text `at` stands for, and updates
   * `at` in place (no allocation per character) to the longest suffix of the text that is a substring
   * of a secret; returns its length.
   */
  advance(at: MatchState, code: number): number {
    let { state, length } = at;
    while (state !== 0 && !this.next[state].has(code)) {
      state = this.link[state];
      length = this.len[state];
    }
    const to = this.next[state].get(code);
    at.state = to ?? 0;
    at.length = to === undefined ? 0 : length + 1;
    return at.length;
  }

  private newState(len: number, link: number): number {
    this.len.push(len);
    this.link.push(link);
    this.next.push(new Map());
    return this.len.length - 1;
  }
}
