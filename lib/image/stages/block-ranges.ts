import type { Extent } from "../../fs/sparse.ts";
import type { BlockRef } from "./types.ts";

/**
 * The first stage: which blocks of the source to read. From the source's
 * allocated extents (holes are sparse and never read), from change hints
 * (`hintedBlocks`), or every block (a full read against a base).
 */

function ref(index: number, size: number, blockSize: number, knownZero = false, outsideHints = false): BlockRef {
  const offset = index * blockSize;
  return { index, offset, length: Math.min(blockSize, size - offset), knownZero, outsideHints };
}

export function blockCount(size: number, blockSize: number): number {
  return Math.ceil(size / blockSize);
}

/** Every block of the image. */
export async function* everyBlock(size: number, blockSize: number): AsyncGenerator<BlockRef> {
  for (let index = 0; index < blockCount(size, blockSize); index++) yield ref(index, size, blockSize);
}

/** The runs of blocks [first, last] the data extents touch, in order, each block once. */
function* touchedBlocks(extents: readonly Extent[], size: number, blockSize: number): Generator<[number, number]> {
  let next = 0;
  for (const [start, end] of extents) {
    if (end <= start || start >= size) continue;
    const first = Math.max(next, Math.floor(start / blockSize));
    const last = Math.floor((Math.min(end, size) - 1) / blockSize);
    if (first <= last) yield [first, last];
    next = Math.max(next, last + 1);
  }
}

/** The blocks any data extent touches, in order (undefined extents: every block). */
export async function* allocatedBlocks(extents: readonly Extent[] | undefined, size: number, blockSize: number): AsyncGenerator<BlockRef> {
  if (!extents) {
    yield* everyBlock(size, blockSize);
    return;
  }
  for (const [first, last] of touchedBlocks(extents, size, blockSize)) {
    for (let index = first; index <= last; index++) yield ref(index, size, blockSize);
  }
}

/** Bytes of the blocks the data extents touch (undefined extents: the whole image): what a backup reads. */
export function allocatedBytes(extents: readonly Extent[] | undefined, size: number, blockSize: number): number {
  if (!extents) return size;
  let bytes = 0;
  for (const [first, last] of touchedBlocks(extents, size, blockSize)) bytes += Math.min(size, (last + 1) * blockSize) - first * blockSize;
  return bytes;
}

/**
 * The hinted blocks in order: those to read, wholly discarded ones as known
 * zeros, and the sanity check's `sample` of blocks outside the hints (read
 * in the same pass, marked `outsideHints`).
 */
export async function* hintedBlockRefs(
  hinted: { read: ReadonlySet<number>; zero: ReadonlySet<number> },
  size: number,
  blockSize: number,
  sample: ReadonlySet<number> = new Set(),
): AsyncGenerator<BlockRef> {
  const indexes = [...new Set([...hinted.read, ...hinted.zero, ...sample])].sort((a, b) => a - b);
  for (const index of indexes) {
    const outside = sample.has(index) && !hinted.read.has(index) && !hinted.zero.has(index);
    yield ref(index, size, blockSize, hinted.zero.has(index) && !hinted.read.has(index), outside);
  }
}
