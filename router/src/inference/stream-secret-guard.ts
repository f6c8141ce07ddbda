import { RouterError } from "../errors/router-error";
import { rawData, withRawData } from "./sse";
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

/** Most event text held back at once (UTF-16 code units, about bytes); the guard then passes the held events on. */
export const MAX_HELD_CHARS = 1024 * 1024;

/** Most distinct field paths (and distinct keys) followed in one stream; more end the stream (fail closed: an upstream-controlled bound on memory). */
export const MAX_FIELD_PATHS = 4096;

/** Deepest nesting followed; a deeper event ends the stream (fail closed). */
export const MAX_PATH_DEPTH = 64;

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
  /** The field stream the value belongs to (collect: interned keys, array elements by `index`). */
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
  /** A top-level string's box (its field), else null. */
  box: { value: string } | null;
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
 * field (as a client joins it: see collect) is read as one text across events, and every run of MIN_REDACTED_RUN or more characters of a credential in it becomes
 * `[redacted]`, in whichever events it lies. An event whose field ends in a shorter run (HOLD_FROM_RUN
 * or more characters) is held back until the run ends or reaches the redaction length. Whole
 * credentials inside one event (also in keys, behind JSON escapes, and those shorter than
 * MIN_REDACTED_RUN) are cut out as well (redactSecretsInJson). Fails closed: the data is the parsed
 * JSON the router judged, and what goes out is that JSON written anew (`rebuild(event, data)`, which
 * keeps only what the router passes on: sse.ts withData); an event whose data is not JSON passes as
 * `plain(event)`, credentials cut out by value (also behind JSON escapes). A stream whose fields cannot
 * all be followed (MAX_FIELD_PATHS, MAX_PATH_DEPTH) is refused: push throws RouterError.
 */
export class StreamSecretGuard {
  private readonly matcher: SubstringMatcher | null;
  private readonly fields = new Map<string, FieldStream>();
  private readonly keys = new Map<string, number>();
  /** Fields whose text ends in a run of HOLD_FROM_RUN to MIN_REDACTED_RUN - 1 characters. */
  private readonly open = new Set<FieldStream>();
  private readonly queue: Pending[] = [];
  /** Text of the held events (UTF-16 code units). */
  private heldChars = 0;

  constructor(
    private readonly secrets: readonly string[],
    private readonly rebuild: (event: string, data: unknown) => string,
    private readonly plain: (event: string) => string = e => e,
    /** Which API's stream this is: its client merges fields its own way (see collect). */
    private readonly api: "chat" | "responses" | "other" = "other",
  ) {
    const long = secrets.filter(s => s.length >= MIN_REDACTED_RUN);
    this.matcher = long.length > 0 ? matcherFor(long) : null;
  }

  /** Takes the next event (its text and eventData's parse of it); returns the events now safe to pass on, in stream order (none while one is held). */
  push(event: string, data: unknown): GuardedEvent[] {
    if (this.matcher === null) return [{ event: this.redactWhole(data !== null && typeof data === "object" ? this.rebuild(event, data) : this.plain(event)), data }];
    const leaves: Leaf[] = [];
    // data that is a JSON string, or not JSON, or a JSON number, boolean or null, is a field of its own
    // (a path no key makes), held in a box to be written back
    const raw = isRawData(data) ? rawData(event) : null;
    const box = typeof data === "string" && data !== "[DONE]" ? { value: data } : raw !== null ? { value: raw } : null;
    if (box !== null) leaves.push(leafOf(box, "value", box.value, typeof data === "string" ? "#string" : "#raw"));
    else {
      verifyTextFields(this.api, data);
      this.collect(data, "", leaves, 0);
    }
    for (const leaf of leaves) this.read(leaf, leaf.path);
    // a Responses delta is also read as its client joins it: by item alone (arguments), and across items (output_text)
    const d = data as { type?: unknown; output_index?: unknown; delta?: unknown } | null;
    if (this.api === "responses" && d !== null && typeof d === "object" && typeof d.delta === "string") {
      const leaf = leaves.find(l => l.parent === d && l.key === "delta");
      if (leaf) {
        this.read(leaf, `@${String(d.type)}:${String(d.output_index)}`);
        this.read(leaf, `@${String(d.type)}:*`);
      }
    }
    this.queue.push({ event, data, leaves, box });
    this.heldChars += event.length;
    if (!this.runIsOpen()) return this.flush();
    if (this.queue.length < MAX_HELD_EVENTS && this.heldChars <= MAX_HELD_CHARS) return [];
    // held too long or too much: what an open run holds is cut before it goes (at most HOLD_FROM_RUN - 1 characters went earlier)
    for (const f of this.open) this.markRing(f);
    return this.flush();
  }

  /** Passes on every held event (at the end of the stream). */
  flush(): GuardedEvent[] {
    const out = this.queue.map(p => this.release(p));
    this.queue.length = 0;
    this.heldChars = 0;
    return out;
  }

  /** Whether some field ends in a run of a credential too short to redact yet but long enough to hold for. */
  private runIsOpen(): boolean {
    return this.open.size > 0;
  }

  /** Reads one string value into the field stream `path`, marking the characters of every run long enough (every character is read: O(1) each). */
  private read(leaf: Leaf, path: string): void {
    const f = this.field(path);
    for (let i = 0; i < leaf.text.length; i++) this.step(f, leaf, i);
    if (f.at.length >= HOLD_FROM_RUN && f.at.length < MIN_REDACTED_RUN) this.open.add(f);
    else this.open.delete(f);
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
      if (before < MIN_REDACTED_RUN) this.markRing(f);
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

  /** Marks the characters of `f`'s ring (the run's last characters) in the events not passed on yet. */
  private markRing(f: FieldStream): void {
    const keep = MIN_REDACTED_RUN - 1;
    for (let k = 1; k <= f.count; k++) {
      const slot = (f.head - k + keep) % keep;
      const earlier = f.leaves[slot];
      if (!earlier.sent) mark(earlier, f.index[slot]);
    }
  }

  /** The stream of field `path`; throws RouterError `upstream_error` past MAX_FIELD_PATHS fields (fail closed: fields are never merged, which would break runs apart). */
  private field(path: string): FieldStream {
    let f = this.fields.get(path);
    if (f === undefined) {
      if (this.fields.size >= MAX_FIELD_PATHS) throw unfollowable(`more than ${MAX_FIELD_PATHS} fields`);
      f = { at: noMatch(), leaves: new Array<Leaf>(MIN_REDACTED_RUN - 1), index: new Int32Array(MIN_REDACTED_RUN - 1), head: 0, count: 0 };
      this.fields.set(path, f);
    }
    return f;
  }

  /**
   * The string values of `value` with their field paths, in document order. A path names each key by a
   * number (keys interned: a 4 MiB key is hashed once, never copied into paths), and an array element
   * by its logical id where it has one — `index` (chat `choices[]`, `tool_calls[]`: clients merge deltas
   * by it, not by position) — else its position; a Responses event's fields are its item's
   * (its `type`, `output_index`, `content_index`, as property keys), and its `delta` is read by type and
   * item and by type alone too (see push). Throws RouterError `upstream_error` deeper than MAX_PATH_DEPTH.
   */
  private collect(value: unknown, path: string, out: Leaf[], depth: number): void {
    if (depth > MAX_PATH_DEPTH) throw unfollowable(`fields nested deeper than ${MAX_PATH_DEPTH} levels`);
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const v = value[i];
        if (typeof v === "string") out.push(leafOf(value, i, v, `${path}[${i}]`));
        else if (v !== null && typeof v === "object") {
          // as a client merges: by the property key `index` makes (`choices[index]`: "0" and 0 alike)
          const id = (v as { index?: unknown }).index;
          this.collect(v, id !== undefined ? `${path}[#${String(id)}]` : `${path}[${i}]`, out, depth + 1);
        }
      }
    } else if (value !== null && typeof value === "object") {
      const o = value as Record<string, unknown>;
      if (depth === 0 && this.api === "responses" && o.output_index !== undefined) path = `@${String(o.type)}:${String(o.output_index)}:${String(o.content_index)}`;
      for (const k in o) {
        const v = o[k];
        const at = `${path}.${this.keyId(k)}`;
        if (typeof v === "string") out.push(leafOf(o, k, v, at));
        else if (v !== null && typeof v === "object") this.collect(v, at, out, depth + 1);
      }
    }
  }

  /** A small number for key `k`, the same for the whole stream; throws RouterError past MAX_FIELD_PATHS keys. */
  private keyId(k: string): number {
    let id = this.keys.get(k);
    if (id === undefined) {
      if (this.keys.size >= MAX_FIELD_PATHS) throw unfollowable(`more than ${MAX_FIELD_PATHS} distinct keys`);
      id = this.keys.size;
      this.keys.set(k, id);
    }
    return id;
  }

  /** An event as it goes out: marked runs replaced, whole credentials cut out. */
  private release(p: Pending): GuardedEvent {
    for (const leaf of p.leaves) {
      leaf.sent = true;
      if (leaf.marks !== null && leaf.parent !== null) leaf.parent[leaf.key as never] = redactMarked(leaf.text, leaf.marks) as never;
      // a field's ring may keep this leaf for a while: it must not keep the event's data (up to 16 MiB) alive
      leaf.parent = null;
      leaf.text = "";
      leaf.marks = null;
    }
    if (isRawData(p.data)) {
      // data that is not JSON: its text, written back (changed or not) as plain data lines
      const text = p.box?.value;
      return { event: this.redactWhole(text === undefined ? this.plain(p.event) : withRawData(p.event, text)), data: undefined };
    }
    const data = p.box !== null ? p.box.value : p.data;
    // what was read is what goes: parsed JSON is written anew (a duplicate key's first value, which the
    // parse dropped and a first-key-wins client would read, does not survive); other text passes as it is
    const event = data !== null && (typeof data === "object" || p.box !== null) ? this.rebuild(p.event, data) : this.plain(p.event);
    return { event: this.redactWhole(event), data };
  }

  /** `event` with whole credentials cut out, also behind JSON escapes (redactSecretsInJson). */
  private redactWhole(event: string): string {
    return redactSecretsInJson(event, this.secrets);
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

/** The refusal when a stream's fields cannot all be followed. */
function unfollowable(why: string): RouterError {
  return new RouterError("upstream_error", `the upstream stream has ${why}: its fields cannot be checked for the router's credentials`);
}

/**
 * `text` with every run of MIN_REDACTED_RUN or more characters of one of `secrets` replaced by
 * `[redacted]`: the stream rule for one piece of text (the router's log lines: an error may quote
 * part of an upstream's echo of a credential, cut wherever that upstream chose). `text` itself when
 * there is none.
 */
export function redactCredentialRuns(text: string, secrets: readonly string[]): string {
  const long = secrets.filter(s => s.length >= MIN_REDACTED_RUN);
  if (long.length === 0) return text;
  const matcher = matcherFor(long);
  const at = noMatch();
  let marks: Uint8Array | null = null;
  let marked = -1; // last position marked
  for (let i = 0; i < text.length; i++) {
    const run = matcher.advance(at, text.charCodeAt(i));
    if (run < MIN_REDACTED_RUN) continue;
    marks ??= new Uint8Array(text.length);
    for (let k = Math.max(i - run + 1, marked + 1); k <= i; k++) marks[k] = 1;
    marked = i;
  }
  return marks === null ? text : redactMarked(text, marks);
}

/** Chat delta fields a client joins as text (`content || '' + …`): a value there must be a string or null. */
const CHAT_TEXT_FIELDS = ["content", "refusal"] as const;

/**
 * Refuses (RouterError `upstream_error`) a stream event whose text fields are not text: a chat
 * choice's `delta.content` / `delta.refusal` or a tool call's `function.arguments`, or a Responses
 * event's `delta`, given as an array, object or number. A client turns those into text its own way
 * (`'' + ["abc"]` is "abc"), which the guard would not follow.
 */
function verifyTextFields(api: "chat" | "responses" | "other", data: unknown): void {
  if (data === null || typeof data !== "object") return;
  const notText = (v: unknown): boolean => v !== undefined && v !== null && typeof v !== "string";
  if (api === "responses" && notText((data as { delta?: unknown }).delta)) throw unfollowable("a delta that is not text");
  if (api !== "chat") return;
  const choices = (data as { choices?: unknown }).choices;
  if (!Array.isArray(choices)) return;
  for (const c of choices) {
    const delta = (c as { delta?: Record<string, unknown> } | null)?.delta;
    if (!delta || typeof delta !== "object") continue;
    for (const k of CHAT_TEXT_FIELDS) if (notText(delta[k])) throw unfollowable(`a choice's delta.${k} that is not text`);
    const calls = delta.tool_calls;
    if (Array.isArray(calls)) for (const t of calls) if (notText((t as { function?: { arguments?: unknown } } | null)?.function?.arguments)) throw unfollowable("tool call arguments that are not text");
  }
}

/** Data a client reads as its text: not JSON (undefined), or a JSON number, boolean or null (`'' + 12345`). */
function isRawData(data: unknown): boolean {
  return data === undefined || data === null || typeof data === "number" || typeof data === "boolean";
}
