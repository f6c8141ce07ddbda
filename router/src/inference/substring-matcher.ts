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

/**
 * The suffix automaton of a few secrets (see the file's doc): `advance` reads text one UTF-16 code
 * unit at a time and says how long the text's longest suffix is that occurs in one of them. Immutable
 * once built; one serves any number of readers, each with its own MatchState.
 */
export class SubstringMatcher {
  /** Longest string ending in each state (characters). */
  private readonly len: Int32Array;
  /** Suffix link of each state (-1 for the initial state). */
  private readonly link: Int32Array;
  /** Transitions, compressed by state: those of state s are at [offsets[s], offsets[s + 1]), sorted by code unit. */
  private readonly offsets: Int32Array;
  private readonly codes: Uint16Array;
  private readonly targets: Int32Array;

  /**
   * Builds the automaton of every substring of `secrets` (none of which should contain NUL; a match
   * across one is only ever longer redaction). Built with a Map per state, then packed into typed
   * arrays (about 35 bytes per character of the secrets: ~100 KiB for a 3 KiB token, not the Maps' ~1 MiB).
   * Building costs ~2 ms per KiB of secrets on 2 cores: once per credential (StreamSecretGuard caches them).
   */
  constructor(secrets: readonly string[]) {
    const len = [0];
    const link = [-1];
    const next: Map<number, number>[] = [new Map()];
    const newState = (l: number, sl: number): number => {
      len.push(l);
      link.push(sl);
      next.push(new Map());
      return len.length - 1;
    };
    let last = 0;
    const add = (c: number): void => {
      const cur = newState(len[last] + 1, -1);
      let p = last;
      while (p !== -1 && !next[p].has(c)) {
        next[p].set(c, cur);
        p = link[p];
      }
      if (p === -1) link[cur] = 0;
      else {
        const q = next[p].get(c) as number;
        if (len[p] + 1 === len[q]) link[cur] = q;
        else {
          const clone = newState(len[p] + 1, link[q]);
          for (const [k, v] of next[q]) next[clone].set(k, v);
          while (p !== -1 && next[p].get(c) === q) {
            next[p].set(c, clone);
            p = link[p];
          }
          link[q] = clone;
          link[cur] = clone;
        }
      }
      last = cur;
    };
    secrets.forEach((secret, i) => {
      if (i > 0) add(0);
      for (let k = 0; k < secret.length; k++) add(secret.charCodeAt(k));
    });
    this.len = Int32Array.from(len);
    this.link = Int32Array.from(link);
    this.offsets = new Int32Array(len.length + 1);
    let edges = 0;
    for (const m of next) edges += m.size;
    this.codes = new Uint16Array(edges);
    this.targets = new Int32Array(edges);
    let at = 0;
    next.forEach((m, s) => {
      this.offsets[s] = at;
      for (const [code, to] of [...m].sort((a, b) => a[0] - b[0])) {
        this.codes[at] = code;
        this.targets[at++] = to;
      }
    });
    this.offsets[len.length] = at;
  }

  /**
   * Reads one more character `code` (a UTF-16 code unit) after the text `at` stands for, and updates
   * `at` in place (no allocation per character) to the longest suffix of the text that is a substring
   * of a secret; returns its length.
   */
  advance(at: MatchState, code: number): number {
    let { state, length } = at;
    let to = this.target(state, code);
    while (to === -1 && state !== 0) {
      state = this.link[state];
      length = this.len[state];
      to = this.target(state, code);
    }
    at.state = to === -1 ? 0 : to;
    at.length = to === -1 ? 0 : length + 1;
    return at.length;
  }

  /** The transition of `state` on `code` (binary search of its sorted codes), or -1. */
  private target(state: number, code: number): number {
    let lo = this.offsets[state];
    let hi = this.offsets[state + 1] - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.codes[mid];
      if (c === code) return this.targets[mid];
      if (c < code) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }
}
