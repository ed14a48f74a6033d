/**
 * A file's extents as its file system maps them: FIEMAP (ioctl
 * FS_IOC_FIEMAP) through bun:ffi, Linux x86-64. Two reflink copies of one
 * file share their physical extents until one of them is written; a
 * rewritten range gets new ones (copy on write). So the ranges whose
 * physical location differs between two snapshots are the ranges written
 * between them, found from metadata without reading any data.
 */

/** One mapped extent: `length` bytes at `logical` in the file, at `physical` on the device. */
export interface FileExtent {
  readonly logical: number;
  readonly physical: number;
  readonly length: number;
  /** FIEMAP_EXTENT_* flags. */
  readonly flags: number;
}

/** The extent's data is encoded (compressed): its physical address is the encoded extent's, not byte for byte. */
export const EXTENT_ENCODED = 0x8;
/** Delayed allocation, unknown location, data inline or not block-aligned: no physical place to compare. */
const EXTENT_NO_PLACE = 0x2 | 0x4 | 0x100 | 0x200;
const EXTENT_LAST = 0x1;
const FLAG_SYNC = 0x1;
/** _IOWR('f', 11, struct fiemap): the struct is 32 bytes. */
const FS_IOC_FIEMAP = 0xc020660b;
const HEADER_BYTES = 32;
const EXTENT_BYTES = 56;
/**
 * Extents asked for per call: 56 bytes each, so one call's buffer is about
 * 224 KiB. A volume rewritten here and there has thousands of extents, and
 * each call walks the file's extent tree again from where the last ended.
 */
const EXTENTS_PER_CALL = 4096;

type Ioctl = (fd: number, request: number, argument: Uint8Array) => number;
let ioctl: Ioctl | null | undefined;

function loadIoctl(): Ioctl | null {
  if (process.platform !== "linux" || process.arch !== "x64") return null;
  try {
    const { dlopen, FFIType } = require("bun:ffi") as typeof import("bun:ffi");
    const libc = dlopen("libc.so.6", { ioctl: { args: [FFIType.i32, FFIType.u64, FFIType.ptr], returns: FFIType.i32 } });
    return libc.symbols.ioctl as unknown as Ioctl;
  } catch {
    return null;
  }
}

/**
 * The extents of the open file `fd` in [0, size), in logical order (the
 * file's dirty pages written out first, so delayed allocations have their
 * place). Undefined when the file system cannot say (no FIEMAP).
 */
export function fileExtents(fd: number, size: number): FileExtent[] | undefined {
  ioctl ??= loadIoctl();
  if (!ioctl) return undefined;
  const buffer = new Uint8Array(HEADER_BYTES + EXTENTS_PER_CALL * EXTENT_BYTES);
  const view = new DataView(buffer.buffer);
  // 64-bit fields as two 32-bit halves: no BigInt per field (a send maps two files of thousands of extents each).
  const u64 = (at: number) => view.getUint32(at, true) + view.getUint32(at + 4, true) * 2 ** 32;
  const setU64 = (at: number, value: number) => {
    view.setUint32(at, value % 2 ** 32, true);
    view.setUint32(at + 4, Math.floor(value / 2 ** 32), true);
  };
  const extents: FileExtent[] = [];
  let start = 0;
  while (start < size) {
    buffer.fill(0, 0, HEADER_BYTES);
    setU64(0, start); // fm_start
    setU64(8, size - start); // fm_length
    view.setUint32(16, FLAG_SYNC, true); // fm_flags
    view.setUint32(24, EXTENTS_PER_CALL, true); // fm_extent_count
    if (ioctl(fd, FS_IOC_FIEMAP, buffer) !== 0) return undefined;
    const mapped = view.getUint32(20, true);
    if (mapped === 0) break;
    let last = false;
    for (let at = 0; at < mapped; at++) {
      const base = HEADER_BYTES + at * EXTENT_BYTES;
      const extent = { logical: u64(base), physical: u64(base + 8), length: u64(base + 16), flags: view.getUint32(base + 40, true) };
      extents.push(extent);
      start = Math.max(start, extent.logical + extent.length);
      if (extent.flags & EXTENT_LAST) last = true;
    }
    if (last) break;
  }
  return extents;
}

/** A byte range [start, end) of a file. */
export type ByteRange = readonly [start: number, end: number];

/**
 * The ranges of [0, size) where `after` differs from `before` in where its
 * bytes are: mapped to another physical place, mapped in one and not the
 * other, or encoded (compressed) extents that are not the very same extent.
 * Ranges unmapped in both (holes) are the same. Both lists are in logical
 * order (as FIEMAP gives them): one walk over the two, each piece between
 * consecutive extent boundaries of either list judged once.
 */
export function movedRanges(before: readonly FileExtent[], after: readonly FileExtent[], size: number): ByteRange[] {
  const changed: [number, number][] = [];
  let i = 0;
  let j = 0;
  for (let from = 0; from < size; ) {
    while (i < before.length && before[i]!.logical + before[i]!.length <= from) i++;
    while (j < after.length && after[j]!.logical + after[j]!.length <= from) j++;
    const old = before[i] && before[i]!.logical <= from ? before[i] : undefined;
    const now = after[j] && after[j]!.logical <= from ? after[j] : undefined;
    // The piece ends at the next boundary of either list: the end of the extent covering `from`, or the start of the next.
    const to = Math.min(size, nextBoundary(before[i], old), nextBoundary(after[j], now));
    if (!sameplace(old, now, from)) {
      const previous = changed[changed.length - 1];
      if (previous && previous[1] === from) previous[1] = to;
      else changed.push([from, to]);
    }
    from = to;
  }
  return changed;
}

/** Where the piece starting inside `covering` (or before `next`, in a hole) ends; Infinity past the last extent. */
function nextBoundary(next: FileExtent | undefined, covering: FileExtent | undefined): number {
  if (covering) return covering.logical + covering.length;
  return next ? next.logical : Infinity;
}

function sameplace(old: FileExtent | undefined, now: FileExtent | undefined, at: number): boolean {
  if (!old || !now) return !old && !now;
  if ((old.flags | now.flags) & EXTENT_NO_PLACE) return false;
  if ((old.flags | now.flags) & EXTENT_ENCODED) {
    return old.logical === now.logical && old.physical === now.physical && old.length === now.length;
  }
  return old.physical + (at - old.logical) === now.physical + (at - now.logical);
}
