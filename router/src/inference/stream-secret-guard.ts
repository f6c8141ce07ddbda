import { redactSecretsInJson } from "./upstream-answer";
import { noMatch, SubstringMatcher, type MatchState } from "./substring-matcher";

/**
 * A run of this many characters (UTF-16 code units) or more of one of the router's credentials, in
 * one field's text across a stream's events, is redacted. Shorter runs pass: 12 characters do not
 * identify a credential of the lengths the router sends (API keys of 32+ characters, Entra tokens of
 * 1–3 KiB), and a smaller run would cut ordinary text more often.
 */
export const MIN_REDACTED_RUN = 12;

/**
 * An event whose field text ends in this many characters of a credential (but fewer than
 * MIN_REDACTED_RUN) is held back until a later event shows whether the run goes on; so at most
 * HOLD_FROM_RUN - 1 characters of a credential reach the agent before its run is found. Six: a field
 * of ordinary text ends in six characters of a credential about once in 10^7 streams, so a stream is
 * practically never delayed.
 */
export const HOLD_FROM_RUN = 6;

/** Most events held back at once; the guard then passes them on (a bound on memory and delay). */
export const MAX_HELD_EVENTS = 64;

/** Most distinct field paths followed in one stream; fields beyond share one (an upstream-controlled bound on memory). */
export const MAX_FIELD_PATHS = 4096;

/** Longest key (characters) a field path names in full; a longer one counts by its start. */
export const MAX_PATH_KEY_CHARS = 64;

/** Longest field path (characters); a longer one, or one deeper than MAX_PATH_DEPTH, is the shared field `*`. */
export const MAX_PATH_CHARS = 512;

/** Deepest nesting a field path follows. */
export const MAX_PATH_DEPTH = 32;

/** What the replaced characters become. */
const MARKER = "[redacted]";

/** An event ready to be passed on: its text (credentials cut out) and its parsed data (as eventData gave it; redacted fields changed in place). */
export interface GuardedEvent {
  event: string;
  data: unknown;
}

/** One string value of an event's data: where it is, and which of its characters are credential. */
interface Leaf {
  /** The object or array holding the value; null once its event has been passed on (see release). */
  parent: Record<string, unknown> | unknown[] | null;
  key: string | number;
  /** JSON path of the value in the event's data (array positions as numbers), naming its field stream. */
  path: string;
  text: string;
  /** 1 for a character to redact; null until one is. */
  marks: Uint8Array | null;
  /** Its event has been passed on: its characters can no longer be redacted. */
  sent: boolean;
}

/** A field's text across events: the match so far and where its last MIN_REDACTED_RUN - 1 characters are (a ring of `count` entries before `head`). */
interface FieldStream {
  at: MatchState;
  leaves: Leaf[];
  index: Int32Array;
  head: number;
  count: number;
}

interface Pending {
  event: string;
  data: unknown;
  leaves: Leaf[];
}

/** Matchers of recent credential sets, built once per set (a token is refreshed about hourly). */
const matchers = new Map<string, SubstringMatcher>();

function matcherFor(secrets: readonly string[]): SubstringMatcher {
  const key = secrets.join("\0");
  let m = matchers.get(key);
  if (m === undefined) {
    m = new SubstringMatcher(secrets);
    if (matchers.size >= 4) matchers.delete(matchers.keys().next().value as string);
    matchers.set(key, m);
  }
  return m;
}

/**
 * Cuts the router's credentials out of an upstream SSE stream before the agent sees it (DESIGN §6:
 * credentials are never returned, even echoed), also where the stream splits one across events: each
 * field (by its JSON path in the event's data, e.g. `choices.0.delta.content`) is read as one text
 * across events, and every run of MIN_REDACTED_RUN or more characters of a credential in it becomes
 * `[redacted]`, in whichever events it lies. An event whose field ends in a shorter run (HOLD_FROM_RUN
 * or more characters) is held back until the run ends or reaches the redaction length. Whole
 * credentials inside one event (also in keys, behind JSON escapes, and those shorter than
 * MIN_REDACTED_RUN) are cut out as well (redactSecretsInJson). Fails closed: the data is the parsed
 * JSON the router judged; an event it cannot parse passes as text, credentials cut out by value.
 * `rebuild(event, data)` writes an event anew around changed data.
 */
export class StreamSecretGuard {
  private readonly matcher: SubstringMatcher | null;
  /** The longest credential's length plus one (characters): no run is longer. */
  private readonly window: number;
  private readonly fields = new Map<string, FieldStream>();
  private readonly queue: Pending[] = [];

  constructor(
    private readonly secrets: readonly string[],
    private readonly rebuild: (event: string, data: unknown) => string,
  ) {
    const long = secrets.filter(s => s.length >= MIN_REDACTED_RUN);
    this.matcher = long.length > 0 ? matcherFor(long) : null;
    this.window = Math.max(0, ...long.map(x => x.length)) + 1;
  }

  /** Takes the next event (its text and eventData's parse of it); returns the events now safe to pass on, in stream order (none while one is held). */
  push(event: string, data: unknown): GuardedEvent[] {
    if (this.matcher === null) return [{ event: this.redactWhole(event, data), data }];
    const leaves: Leaf[] = [];
    this.collect(data, "", leaves);
    for (const leaf of leaves) this.read(leaf);
    this.queue.push({ event, data, leaves });
    if (this.queue.length < MAX_HELD_EVENTS && this.runIsOpen()) return [];
    return this.flush();
  }

  /** Passes on every held event (at the end of the stream). */
  flush(): GuardedEvent[] {
    const out = this.queue.map(p => this.release(p));
    this.queue.length = 0;
    return out;
  }

  /** Whether some field ends in a run of a credential too short to redact yet but long enough to hold for. */
  private runIsOpen(): boolean {
    for (const f of this.fields.values()) if (f.at.length >= HOLD_FROM_RUN && f.at.length < MIN_REDACTED_RUN) return true;
    return false;
  }

  /**
   * Reads one string value into its field's stream, marking the characters of every run long enough.
   * A value longer than twice the longest credential is read where a run can cross into another
   * event: its start, while the run carried in from the field's earlier text goes on, and its last
   * `window` characters (a run is never longer than a credential); a whole credential elsewhere in it
   * is cut out by value. So a 64 KiB delta costs a few KiB of matching, not 64 KiB.
   */
  private read(leaf: Leaf): void {
    const f = this.field(leaf.path);
    const n = leaf.text.length;
    if (n <= 2 * this.window) {
      for (let i = 0; i < n; i++) this.step(f, leaf, i);
      return;
    }
    for (let i = 0; i < n && f.at.length > 0; i++) {
      const before = f.at.length;
      this.step(f, leaf, i);
      if (f.at.length !== before + 1) break; // the carried run ended here
    }
    f.at = noMatch();
    f.count = 0;
    for (let i = n - this.window; i < n; i++) this.step(f, leaf, i);
  }

  /** Reads character `i` of `leaf` into field stream `f`. */
  private step(f: FieldStream, leaf: Leaf, i: number): void {
    const keep = MIN_REDACTED_RUN - 1;
    const before = f.at.length;
    const run = (this.matcher as SubstringMatcher).advance(f.at, leaf.text.charCodeAt(i));
    if (run >= MIN_REDACTED_RUN) {
      mark(leaf, i);
      // a run grows by one character at a time: one that has just reached the length marks its
      // earlier characters too (those of an event already passed on have reached the agent)
      if (before < MIN_REDACTED_RUN) {
        for (let k = 1; k <= f.count; k++) {
          const slot = (f.head - k + keep) % keep;
          const earlier = f.leaves[slot];
          if (!earlier.sent) mark(earlier, f.index[slot]);
        }
      }
    }
    if (run === 0) {
      f.count = 0; // no run: nothing before this character can be part of a later one
      return;
    }
    f.leaves[f.head] = leaf;
    f.index[f.head] = i;
    f.head = (f.head + 1) % keep;
    f.count = Math.min(f.count + 1, keep);
  }

  private field(path: string): FieldStream {
    let f = this.fields.get(path);
    if (f === undefined) {
      const key = this.fields.size < MAX_FIELD_PATHS ? path : "*";
      f = this.fields.get(key);
      if (f === undefined) {
        f = { at: noMatch(), leaves: new Array<Leaf>(MIN_REDACTED_RUN - 1), index: new Int32Array(MIN_REDACTED_RUN - 1), head: 0, count: 0 };
        this.fields.set(key, f);
      }
    }
    return f;
  }

  /**
   * The string values of `value` with their JSON paths, in document order. Paths are bounded (the
   * data is upstream-controlled): a key counts by its first MAX_PATH_KEY_CHARS characters, a path
   * longer than MAX_PATH_CHARS or deeper than MAX_PATH_DEPTH is the shared field `*` (a 4 MiB key over a
   * thousand values would otherwise make a thousand 4 MiB paths).
   */
  private collect(value: unknown, path: string, out: Leaf[], depth = 0): void {
    const at = (seg: string | number): string => {
      const p = `${path}.${typeof seg === "string" && seg.length > MAX_PATH_KEY_CHARS ? `${seg.slice(0, MAX_PATH_KEY_CHARS)}…` : seg}`;
      return p.length > MAX_PATH_CHARS || depth >= MAX_PATH_DEPTH ? "*" : p;
    };
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const v = value[i];
        if (typeof v === "string") out.push(leafOf(value, i, v, at(i)));
        else if (v !== null && typeof v === "object") this.collect(v, at(i), out, depth + 1);
      }
    } else if (value !== null && typeof value === "object") {
      for (const k in value) {
        const v = (value as Record<string, unknown>)[k];
        if (typeof v === "string") out.push(leafOf(value as Record<string, unknown>, k, v, at(k)));
        else if (v !== null && typeof v === "object") this.collect(v, at(k), out, depth + 1);
      }
    }
  }

  /** An event as it goes out: marked runs replaced, whole credentials cut out. */
  private release(p: Pending): GuardedEvent {
    let changed = false;
    for (const leaf of p.leaves) {
      leaf.sent = true;
      if (leaf.marks !== null && leaf.parent !== null) {
        leaf.parent[leaf.key as never] = redactMarked(leaf.text, leaf.marks) as never;
        changed = true;
      }
      // a field's ring may keep this leaf for a while: it must not keep the event's data (up to 16 MiB) alive
      leaf.parent = null;
      leaf.text = "";
      leaf.marks = null;
    }
    const event = changed ? this.rebuild(p.event, p.data) : p.event;
    return { event: this.redactWhole(event, p.data), data: p.data };
  }

  private redactWhole(event: string, data: unknown): string {
    return redactSecretsInJson(event, data, this.secrets, v => this.rebuild(event, v));
  }
}

function leafOf(parent: Record<string, unknown> | unknown[], key: string | number, text: string, path: string): Leaf {
  return { parent, key, path, text, marks: null, sent: false };
}

function mark(leaf: Leaf, i: number): void {
  leaf.marks ??= new Uint8Array(leaf.text.length);
  leaf.marks[i] = 1;
}

/** `text` with each maximal run of marked characters replaced by one `[redacted]`. */
export function redactMarked(text: string, marks: Uint8Array): string {
  let out = "";
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    if (marks[i] !== 1) continue;
    out += text.slice(from, i) + MARKER;
    while (i < text.length && marks[i] === 1) i++;
    from = i;
  }
  return out + text.slice(from);
}
