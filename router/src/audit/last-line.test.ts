import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { firstLine, lastWholeLine } from "./last-line";

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "kars-last-line-"))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("lastWholeLine", () => {
  const long = "x".repeat(10_000);
  it.each<[string, string | null, string | null, string]>([
    ["a missing file", null, null, ""],
    ["an empty file", "", null, ""],
    ["one line", "a\n", "a", "a\n"],
    ["the last of several lines", "a\nb\nc\n", "c", "a\nb\nc\n"],
    ["a torn last line, which is cut off", "a\nb\n{\"seq\":3,\"ts", "b", "a\nb\n"],
    ["only a torn line", "{\"seq\":0", null, ""],
    ["empty lines at the end, skipped", "a\nb\n\n\n", "b", "a\nb\n\n\n"],
    ["a line longer than a chunk", `a\n${long}\n`, long, `a\n${long}\n`],
    ["a torn line longer than a chunk", `a\n${long}`, "a", "a\n"],
    ["UTF-8 split across chunks", `a\n${"é".repeat(5000)}\n`, "é".repeat(5000), `a\n${"é".repeat(5000)}\n`],
  ])("finds the head of %s", (_t, content, line, after) => {
    const file = path.join(dir, "log.jsonl");
    if (content !== null) fs.writeFileSync(file, content);
    expect(lastWholeLine(file, 4096)).toBe(line);
    if (content !== null) expect(fs.readFileSync(file, "utf8")).toBe(after);
  });

  it("reads only the end of a file too large to read whole (8 GiB, sparse)", () => {
    const file = path.join(dir, "huge.jsonl");
    const fd = fs.openSync(file, "w");
    const size = 8 * 1024 ** 3;
    fs.ftruncateSync(fd, size); // a hole: no disk used; readFileSync would throw (larger than a Buffer may be)
    fs.writeSync(fd, '\n{"seq":41}\n{"seq":42}\n{"seq":43,"torn', size);
    fs.closeSync(fd);
    expect(lastWholeLine(file)).toBe('{"seq":42}');
    expect(fs.statSync(file).size).toBe(size + '\n{"seq":41}\n{"seq":42}\n'.length);
  });

});

describe("firstLine", () => {
  it.each<[string, string | null, string | null]>([
    ["a missing file", null, null],
    ["an empty file", "", null],
    ["several lines", "a\nb\n", "a"],
    ["no newline", "abc", "abc"],
    ["a first line longer than a chunk", `${"y".repeat(10_000)}\nb\n`, "y".repeat(10_000)],
  ])("reads %s", (_t, content, line) => {
    const file = path.join(dir, "log.jsonl");
    if (content !== null) fs.writeFileSync(file, content);
    expect(firstLine(file, 4096)).toBe(line);
  });
});
