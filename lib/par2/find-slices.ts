/**
 * Finds a set's slices anywhere in other files (renamed files, split pieces
 * `file.001 …`, files with bytes inserted or cut): a CRC32 of the window of
 * one slice rolled over every byte offset, and an MD5 where the CRC matches
 * a wanted slice. After a slice is found the search goes on right after it,
 * where the next one most likely starts. With `skip` (par2cmdline's -N) it
 * looks only within ±leeway bytes of where a slice would start next and
 * jumps a slice at a time in between: much faster, blind to data displaced
 * further.
 */
import { closeSync, openSync, statSync } from "node:fs";
import { fsPath } from "../fs/byte-names.ts";
import { equalBytes, hashZeros } from "./packets.ts";
import { readAt } from "./read-at.ts";
import { SCRATCH_READ, scratchBuffer } from "./scratch.ts";
import type { SliceChecksum } from "./packets.ts";

/** A slice wanted by the search: its number in the set, its checksums, and its length (shorter than the slice size at a file's end). */
export interface WantedSlice {
  readonly index: number;
  readonly checksum: SliceChecksum;
  readonly length: number;
}

export interface FoundSlice {
  readonly index: number;
  readonly path: string;
  readonly offset: number;
}

/** A file to search; `intact`: sorted byte ranges already known to hold the right data (a damaged file's good slices), not searched again. */
export interface SearchedFile {
  readonly path: string;
  readonly intact?: readonly { readonly start: number; readonly end: number }[];
}

export interface FindOptions {
  /** -N: search only near where slices would follow each other; -S: how near (default 64 bytes, par2cmdline's). */
  readonly skip?: { readonly leeway: number };
  readonly signal?: AbortSignal;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** The CRC register's change for one zero byte, as a 32×32 matrix over GF(2) (column j: the image of bit j). */
function zeroByteOperator(): Uint32Array {
  const columns = new Uint32Array(32);
  for (let j = 0; j < 32; j++) {
    const state = (1 << j) >>> 0;
    columns[j] = ((state >>> 8) ^ CRC_TABLE[state & 0xff]) >>> 0;
  }
  return columns;
}

function apply(matrix: Uint32Array, vector: number): number {
  let result = 0;
  for (let j = 0; vector !== 0; j++, vector >>>= 1) if (vector & 1) result ^= matrix[j];
  return result >>> 0;
}

function compose(outer: Uint32Array, inner: Uint32Array): Uint32Array {
  return inner.map((column) => apply(outer, column));
}

/** The register change for `count` zero bytes, by squaring (a few dozen 32×32 products, not one step per byte). */
function zeroBytesOperator(count: number): Uint32Array {
  let result: Uint32Array = Uint32Array.from({ length: 32 }, (_, j) => (1 << j) >>> 0);
  let power: Uint32Array = zeroByteOperator();
  for (let left = count; left > 0; left = Math.floor(left / 2)) {
    if (left % 2 === 1) result = compose(power, result);
    power = compose(power, power);
  }
  return result;
}

/**
 * Rolling CRC32 over a window of `length` bytes. The register after a
 * window W (initial value ~0, before the final ~0) is linear in W's bytes
 * plus a constant from the initial value, so sliding by one byte is one
 * ordinary update with the incoming byte, plus the outgoing byte's
 * contribution (`out[b]`: b followed by `length` bytes) and a constant.
 */
class RollingCrc {
  readonly #out = new Uint32Array(256);
  readonly #constant: number;

  constructor(length: number) {
    const shift = zeroBytesOperator(length);
    for (let b = 0; b < 256; b++) this.#out[b] = apply(shift, CRC_TABLE[b]);
    const initial = 0xffffffff;
    this.#constant = (apply(shift, apply(zeroByteOperator(), initial)) ^ apply(shift, initial)) >>> 0;
  }

  /** The register for `window` (its CRC is the register ^ ~0). */
  static register(window: Uint8Array): number {
    return (Bun.hash.crc32(window) ^ 0xffffffff) >>> 0;
  }

  roll(register: number, outgoing: number, incoming: number): number {
    return ((register >>> 8) ^ CRC_TABLE[(register ^ incoming) & 0xff] ^ this.#out[outgoing] ^ this.#constant) >>> 0;
  }
}

/**
 * Every wanted slice found in `paths`, each at most once (the first place
 * found). Full-length slices are looked for at every offset; a short last
 * slice at the end of a file and right after the slice before it.
 */
export function findSlices(files: readonly (string | SearchedFile)[], wanted: readonly WantedSlice[], sliceSize: number, options: FindOptions = {}): FoundSlice[] {
  const found = new Map<number, FoundSlice>();
  const full = wanted.filter((slice) => slice.length === sliceSize);
  const short = wanted.filter((slice) => slice.length < sliceSize);
  const byCrc = new Map<number, WantedSlice[]>();
  // A bitmap of the CRCs' low 20 bits: most offsets are turned away without a map lookup.
  const sieve = new Uint8Array(1 << 17);
  for (const slice of full) {
    const crc = slice.checksum.crc32 >>> 0;
    byCrc.set(crc, [...(byCrc.get(crc) ?? []), slice]);
    sieve[(crc & 0xfffff) >>> 3] |= 1 << (crc & 7);
  }
  const rolling = full.length > 0 ? new RollingCrc(sliceSize) : undefined;
  for (const file of files) {
    const { path, intact = [] } = typeof file === "string" ? { path: file } : file;
    let size: number;
    let fd: number;
    try {
      size = statSync(fsPath(path)).size;
      fd = openSync(fsPath(path), "r");
    } catch {
      continue;
    }
    try {
      const ends: number[] = [];
      if (rolling && size >= sliceSize) scanFile(fd, path, size, sliceSize, rolling, byCrc, sieve, found, ends, intact, options);
      if (short.length > 0) findShort(fd, path, size, sliceSize, short, found, [size, ...ends]);
    } finally {
      closeSync(fd);
    }
  }
  // Held for the search only: a repair's products come next, and the piece would sit through them.
  piece = new Uint8Array(0);
  return [...found.values()];
}

/**
 * A piece of a candidate slice, read to check its MD5 (or to start the
 * rolling CRC after a jump), reused within a search: candidates are many.
 * At most SCRATCH_READ: a slice of a large file's set is tens of megabytes,
 * and is hashed piece by piece.
 */
let piece = new Uint8Array(0);

function pieceBuffer(sliceSize: number): Uint8Array {
  const length = Math.min(sliceSize, SCRATCH_READ);
  if (piece.length !== length) piece = new Uint8Array(length);
  return piece;
}

/** Whether the `length` bytes at `offset`, zero-padded to the slice size, have the MD5 `expected`. */
function confirm(fd: number, offset: number, length: number, sliceSize: number, expected: Uint8Array): boolean {
  const bytes = pieceBuffer(sliceSize);
  const hasher = new Bun.CryptoHasher("md5");
  for (let done = 0; done < length; ) {
    const step = Math.min(bytes.length, length - done);
    if (readAt(fd, bytes, step, offset + done) < step) return false;
    hasher.update(bytes.subarray(0, step));
    done += step;
  }
  // The padding's CRC comes along unused (the rolling CRC matched already): only a short slice, a file's last, has padding.
  if (length < sliceSize) hashZeros(hasher, 0, sliceSize - length, bytes.fill(0));
  return equalBytes(new Uint8Array(hasher.digest().buffer), expected);
}

function scanFile(
  fd: number, path: string, size: number, sliceSize: number, rolling: RollingCrc, byCrc: Map<number, WantedSlice[]>, sieve: Uint8Array,
  found: Map<number, FoundSlice>, ends: number[], intact: readonly { start: number; end: number }[], options: FindOptions,
): void {
  // Two views of the file, each a read of SCRATCH_READ refilled as the window moves: one where bytes leave
  // the window, one where they enter it. Holding the window itself would cost two slices (100 MB for a
  // 100 GB file's set of 2000 slices).
  const scratch = scratchBuffer(2 * SCRATCH_READ);
  const leaving = scratch.subarray(0, SCRATCH_READ);
  const entering = scratch.subarray(SCRATCH_READ);
  let leavingStart = 0;
  let leavingLength = 0;
  let enteringStart = 0;
  let enteringLength = 0;
  const load = (view: Uint8Array, from: number) => readAt(fd, view, Math.min(view.length, size - from), from);
  /** The register of the window at `from` (which ends within the file). */
  const registerAt = (from: number): number => {
    if (sliceSize <= entering.length) {
      if (from < enteringStart || from + sliceSize > enteringStart + enteringLength) {
        enteringStart = from;
        enteringLength = load(entering, from);
      }
      return RollingCrc.register(entering.subarray(from - enteringStart, from - enteringStart + sliceSize));
    }
    const bytes = pieceBuffer(sliceSize);
    let crc = 0;
    for (let done = 0; done < sliceSize; done += bytes.length) {
      const got = readAt(fd, bytes, Math.min(bytes.length, sliceSize - done), from + done);
      crc = Bun.hash.crc32(bytes.subarray(0, got), crc);
    }
    return (crc ^ 0xffffffff) >>> 0;
  };
  const leeway = options.skip?.leeway;
  let offset = 0;
  /** With -N: the offset where the next slice is expected; offsets beyond expected + leeway jump ahead. */
  let expected = 0;
  let nextIntact = 0;
  let register = registerAt(0);
  while (offset + sliceSize <= size) {
    options.signal?.throwIfAborted();
    const crc = (register ^ 0xffffffff) >>> 0;
    let matched = false;
    if (sieve[(crc & 0xfffff) >>> 3] & (1 << (crc & 7))) {
      for (const slice of byCrc.get(crc) ?? []) {
        if (found.has(slice.index) || !confirm(fd, offset, sliceSize, sliceSize, slice.checksum.md5)) continue;
        found.set(slice.index, { index: slice.index, path, offset });
        ends.push(offset + sliceSize);
        matched = true;
        break;
      }
    }
    let next = offset + 1;
    if (matched) next = offset + sliceSize;
    // Windows wholly inside data known to be right are not searched: a damaged file is searched around its damage only.
    while (nextIntact < intact.length && intact[nextIntact].end - sliceSize < next) nextIntact++;
    if (nextIntact < intact.length && intact[nextIntact].start <= next) next = intact[nextIntact].end - sliceSize + 1;
    if (leeway !== undefined) {
      if (matched) expected = offset + sliceSize;
      // Past the leeway around the expected place: look around the next one.
      if (next > expected + leeway) {
        expected += sliceSize;
        next = Math.max(next, expected - leeway);
      }
    }
    if (next + sliceSize > size) break;
    if (next === offset + 1) {
      // Roll by one byte: the byte at `offset` leaves the window, the one at `offset + sliceSize` enters it.
      const enters = offset + sliceSize;
      if (offset < leavingStart || offset >= leavingStart + leavingLength) {
        leavingStart = offset;
        leavingLength = load(leaving, offset);
      }
      if (enters < enteringStart || enters >= enteringStart + enteringLength) {
        enteringStart = enters;
        enteringLength = load(entering, enters);
      }
      register = rolling.roll(register, leaving[offset - leavingStart], entering[enters - enteringStart]);
    } else {
      register = registerAt(next);
    }
    offset = next;
  }
}

/** Short last slices: at the end of a file, or right after a slice found before. */
function findShort(fd: number, path: string, size: number, sliceSize: number, short: readonly WantedSlice[], found: Map<number, FoundSlice>, candidates: readonly number[]): void {
  for (const slice of short) {
    if (found.has(slice.index)) continue;
    for (const candidate of new Set(candidates)) {
      // A candidate end of file: the slice would end there; any other: it would start there.
      const offset = candidate === size ? size - slice.length : candidate;
      if (offset < 0 || offset + slice.length > size) continue;
      if (confirm(fd, offset, slice.length, sliceSize, slice.checksum.md5)) {
        found.set(slice.index, { index: slice.index, path, offset });
        break;
      }
    }
  }
}
