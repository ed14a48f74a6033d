import { describe, expect, test } from "bun:test";
import { EXTENT_ENCODED, movedRanges, type ByteRange, type FileExtent } from "../../lib/fs/fiemap.ts";
import { seededRandom } from "../helpers/fixture.ts";

/**
 * movedRanges (the single walk over two extent maps a send compares) against
 * a brute-force answer: every 4 KiB unit judged on its own by the rule the
 * function documents, on random pairs of maps made the way a rewrite makes
 * them (extents kept, split where the other copy is not, moved, dropped,
 * added in holes; encoded and placeless ones among them).
 */
const UNIT = 4096;
const NO_PLACE = 0x4; // FIEMAP_EXTENT_UNKNOWN

function randomMaps(seed: number, units: number): { before: FileExtent[]; after: FileExtent[] } {
  const next = seededRandom(seed);
  const pick = (n: number) => Math.floor(next() * n);
  const before: FileExtent[] = [];
  for (let at = pick(3); at < units; ) {
    const length = 1 + pick(8);
    const flags = next() < 0.1 ? EXTENT_ENCODED : next() < 0.05 ? NO_PLACE : 0;
    before.push({ logical: at * UNIT, physical: (1000 + pick(100_000)) * UNIT, length: Math.min(length, units - at) * UNIT, flags });
    at += length + (next() < 0.3 ? 1 + pick(4) : 0);
  }
  const after: FileExtent[] = [];
  let end = 0;
  for (const extent of before) {
    // Now and then a new extent written into the hole before this one.
    if (extent.logical > end && next() < 0.3) after.push({ logical: end, physical: (200_000 + pick(100_000)) * UNIT, length: extent.logical - end, flags: 0 });
    const roll = next();
    if (roll < 0.4) after.push(extent);
    else if (roll < 0.6 && extent.length > UNIT && !(extent.flags & EXTENT_ENCODED)) {
      // The same place, split where the other map is not.
      const cut = (1 + pick(extent.length / UNIT - 1)) * UNIT;
      after.push({ ...extent, length: cut }, { ...extent, logical: extent.logical + cut, physical: extent.physical + cut, length: extent.length - cut });
    } else if (roll < 0.8) after.push({ ...extent, physical: (200_000 + pick(100_000)) * UNIT });
    else if (roll < 0.9) after.push({ ...extent, physical: extent.physical + UNIT });
    // else dropped: a hole now.
    end = extent.logical + extent.length;
  }
  return { before, after };
}

/** The rule, unit by unit: the extent covering the unit's first byte in each map, compared as documented. */
function bruteForce(before: readonly FileExtent[], after: readonly FileExtent[], size: number): ByteRange[] {
  const covering = (extents: readonly FileExtent[], at: number) => extents.find((e) => e.logical <= at && at < e.logical + e.length);
  const ranges: [number, number][] = [];
  for (let at = 0; at < size; at += UNIT) {
    const old = covering(before, at);
    const now = covering(after, at);
    let same: boolean;
    if (!old || !now) same = !old && !now;
    else if ((old.flags | now.flags) & NO_PLACE) same = false;
    else if ((old.flags | now.flags) & EXTENT_ENCODED) same = old.logical === now.logical && old.physical === now.physical && old.length === now.length;
    else same = old.physical - old.logical === now.physical - now.logical;
    if (same) continue;
    const end = Math.min(at + UNIT, size);
    const last = ranges[ranges.length - 1];
    if (last && last[1] === at) last[1] = end;
    else ranges.push([at, end]);
  }
  return ranges;
}

describe("movedRanges", () => {
  test.each([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16])("random maps, seed %d, against the unit-by-unit rule", (seed) => {
    const units = 200 + seed * 37;
    const { before, after } = randomMaps(seed, units);
    // A size that ends inside the last unit, and one that cuts the maps short.
    for (const size of [units * UNIT - 100, Math.floor(units / 2) * UNIT]) expect(movedRanges(before, after, size)).toEqual(bruteForce(before, after, size));
  });

  test("identical maps (only placeless extents differ), and a map against nothing", () => {
    const { before } = randomMaps(99, 300);
    const size = 300 * UNIT;
    const placed = before.filter((extent) => !(extent.flags & NO_PLACE));
    expect(placed.length).toBeLessThan(before.length);
    expect(movedRanges(placed, placed, size)).toEqual([]);
    expect(movedRanges(before, before, size)).toEqual(bruteForce(before, before, size));
    expect(movedRanges([], [], size)).toEqual([]);
    expect(movedRanges(before, [], size)).toEqual(bruteForce(before, [], size));
    expect(movedRanges([], before, size)).toEqual(bruteForce([], before, size));
  });
});
