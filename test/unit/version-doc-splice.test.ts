import { describe, expect, test } from "bun:test";
import type { BlockRow, VersionRow } from "../../lib/image/catalog/image-catalog.ts";
import { allLinesValid, blockLine, docLinesOf, lineCount, parseVersionDoc, spliceLines, versionDocOfParts, versionDocText } from "../../lib/image/version-doc.ts";
import { seededRandom } from "../helpers/fixture.ts";

/**
 * A version's document made over its base's bytes (spliceLines, what a
 * volume send's finish writes) against the document versionDocText makes
 * from the version's whole block list: byte for byte equal, on random base
 * lists and random sets of blocks read (changed, made zero over data,
 * added where the base had none, left as the base had them).
 */
const version: VersionRow = {
  uid: "0b8c8a5e-1f7e-4b5e-9f3a-2d6c1c4e8a77",
  name: "vm1 — «a name not in ASCII»",
  snapshot: "20261204-101500",
  date: Date.UTC(2026, 11, 4, 10, 15),
  size: 300 * 131072,
  blockSize: 131072,
  status: "valid",
  protected: false,
  labels: { archive: "x\ny" },
  baseUid: "base",
  bytesRead: 1,
  bytesWritten: 2,
  bytesDeduplicated: 3,
  bytesSparse: 4,
};

function hash(next: () => number): string {
  return Array.from({ length: 64 }, () => "0123456789abcdef"[Math.floor(next() * 16)]).join("");
}

function randomCase(seed: number): { base: BlockRow[]; read: number[]; now: Map<number, BlockRow> } {
  const next = seededRandom(seed);
  const count = Math.floor(next() * 200);
  const base: BlockRow[] = [];
  for (let idx = 0; idx < count; idx++) {
    if (next() < 0.2) continue; // a hole: no row
    base.push({ idx, hash: next() < 0.1 ? null : hash(next), size: next() < 0.05 ? 1 + Math.floor(next() * 131071) : 131072, valid: true });
  }
  const read = new Set<number>();
  for (let n = Math.floor(next() * 30); n > 0; n--) read.add(Math.floor(next() * (count + 5)));
  if (next() < 0.2 && count > 0) read.add(0);
  if (next() < 0.2 && count > 0) read.add(count - 1);
  const now = new Map<number, BlockRow>();
  for (const idx of read) {
    const roll = next();
    const old = base.find((row) => row.idx === idx);
    if (roll < 0.5) now.set(idx, { idx, hash: hash(next), size: 131072, valid: true });
    else if (roll < 0.65 && old) now.set(idx, { idx, hash: null, size: 131072, valid: true }); // zeros over the base's data
    else if (roll < 0.85 && old) now.set(idx, old); // read, equal: the base's row copied
    // else: no row (zeros where the base had none, or a row dropped)
  }
  return { base, read: [...read].sort((a, b) => a - b), now };
}

describe("version documents made over the base's bytes", () => {
  test("equal byte for byte to the document of the whole block list, on 500 random cases", () => {
    for (let seed = 1; seed <= 500; seed++) {
      const { base, read, now } = randomCase(seed);
      const baseDoc = docLinesOf(Buffer.from(versionDocText({ ...version, uid: "base", baseUid: null }, base)))!;
      expect(baseDoc).toBeDefined();
      expect(lineCount(baseDoc)).toBe(base.length);
      const { parts, dropped, added } = spliceLines(baseDoc, read, (index) => {
        const row = now.get(index);
        return row && blockLine(row);
      });
      const expected = [...base.filter((row) => !read.includes(row.idx)), ...now.values()].sort((a, b) => a.idx - b.idx);
      const made = versionDocOfParts(version, parts);
      expect(made.toString("utf8")).toBe(versionDocText(version, expected));
      expect(dropped).toEqual(base.filter((row) => read.includes(row.idx)).map(blockLine));
      expect(added).toBe(now.size);
      expect(lineCount(baseDoc) - dropped.length + added).toBe(expected.length);
      expect(parseVersionDoc(made.toString("utf8"), "test").blocks).toEqual(expected);
    }
  });

  test("a document with a line a scrub made invalid is not all valid; one of another layout is refused", () => {
    const rows: BlockRow[] = [
      { idx: 0, hash: "a".repeat(64), size: 131072, valid: true },
      { idx: 3, hash: null, size: 0, valid: true },
      { idx: 7, hash: "b".repeat(64), size: 1000, valid: true },
    ];
    expect(allLinesValid(docLinesOf(Buffer.from(versionDocText(version, rows)))!)).toBe(true);
    for (const bad of [0, 1, 2]) {
      const marked = rows.map((row, at) => (at === bad ? { ...row, valid: false } : row));
      expect(allLinesValid(docLinesOf(Buffer.from(versionDocText(version, marked)))!)).toBe(false);
    }
    expect(lineCount(docLinesOf(Buffer.from(versionDocText(version, [])))!)).toBe(0);
    const text = versionDocText(version, rows);
    expect(docLinesOf(Buffer.from(JSON.stringify(JSON.parse(text))))).toBeUndefined();
    expect(docLinesOf(Buffer.from(text.slice(0, -1)))).toBeUndefined();
  });
});
