/** rbd-diff hints to blocks: which are read, which are known zeros (lib/image/hints.ts). */
import { describe, expect, test } from "bun:test";
import { hintedBlocks, type Hint } from "../../lib/image/hints.ts";

const MiB = 1024 * 1024;
const blocks = (hints: Hint[], size = 8 * MiB) => {
  const { read, zero } = hintedBlocks(hints, size, 4 * MiB);
  return { read: [...read].sort(), zero: [...zero].sort() };
};

describe("hintedBlocks", () => {
  test("a block wholly discarded is zeros; one partly discarded is read; one hinted as existing is read", () => {
    expect(blocks([{ offset: 0, length: 4 * MiB, exists: false }])).toEqual({ read: [], zero: [0] });
    expect(blocks([{ offset: 0, length: 2 * MiB, exists: false }])).toEqual({ read: [0], zero: [] });
    expect(blocks([{ offset: 0, length: 2 * MiB, exists: false }, { offset: 2 * MiB, length: 2 * MiB, exists: false }])).toEqual({ read: [], zero: [0] });
    expect(blocks([{ offset: 4 * MiB, length: 4 * MiB, exists: false }, { offset: 5 * MiB, length: 1, exists: true }])).toEqual({ read: [1], zero: [] });
  });

  test("discards over the same bytes cover them once: two over a block's first half leave its second half to be read", () => {
    const half = { offset: 0, length: 2 * MiB, exists: false };
    expect(blocks([half, half])).toEqual({ read: [0], zero: [] });
    expect(blocks([{ offset: 0, length: 3 * MiB, exists: false }, { offset: 1 * MiB, length: 2 * MiB, exists: false }])).toEqual({ read: [0], zero: [] });
    // Overlapping discards that do cover the block between them.
    expect(blocks([{ offset: 0, length: 3 * MiB, exists: false }, { offset: 2 * MiB, length: 2 * MiB, exists: false }])).toEqual({ read: [], zero: [0] });
  });

  test("the short last block is covered by a discard to the end of the image", () => {
    expect(blocks([{ offset: 4 * MiB, length: 1 * MiB, exists: false }], 5 * MiB)).toEqual({ read: [], zero: [1] });
  });
});
