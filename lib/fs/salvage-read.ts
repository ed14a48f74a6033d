/**
 * Reading a file whose storage refuses some of its bytes. A bad sector
 * answers EIO; on an encrypted disk a block whose ciphertext was altered
 * fails its authentication and gocryptfs answers EIO, securefs EPERM. The
 * rest of the file still reads, and the refused bytes are exactly what
 * parity can rebuild: so readers that can repair read around them (zeros in
 * their place) and say which ranges they were.
 */
import { closeSync, constants, fstatSync, openSync, readSync, writeSync } from "node:fs";
import { errnoCode } from "../errors.ts";
import { fsPath } from "./byte-names.ts";

/**
 * The unit a refused read is retried in: the block size of gocryptfs and
 * securefs and of most disks' sectors, so only the bad blocks are lost.
 */
export const SALVAGE_BLOCK = 4096;

/** Bytes `start` (inclusive) to `end` (exclusive) of a file. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/** Whether a read of an open file failed because the storage refuses the data itself (not a bad call). */
export function isUnreadableData(error: unknown): boolean {
  const code = errnoCode(error);
  return code === "EIO" || code === "EPERM" || code === "EBADMSG";
}

/**
 * Reads `length` bytes at `position` into `into`, fewer only at the end of
 * the file, like readAt; where the storage refuses bytes, reads them block by
 * block, leaves zeros for the blocks it still refuses and adds their ranges
 * to `unreadable` (merged with the last one when adjacent).
 */
export function readSalvaging(fd: number, into: Uint8Array, length: number, position: number, unreadable: ByteRange[]): number {
  try {
    return readFully(fd, into, 0, length, position);
  } catch (error) {
    if (!isUnreadableData(error)) throw error;
  }
  const size = fstatSync(fd).size;
  const end = Math.min(position + length, Math.max(size, position));
  let at = position;
  while (at < end) {
    const blockEnd = Math.min(end, (Math.floor(at / SALVAGE_BLOCK) + 1) * SALVAGE_BLOCK);
    const offset = at - position;
    try {
      const got = readFully(fd, into, offset, blockEnd - at, at);
      // Short before the end stat gave: the file shrank meanwhile; what is there is all there is.
      if (got < blockEnd - at) return offset + got;
    } catch (error) {
      if (!isUnreadableData(error)) throw error;
      into.fill(0, offset, offset + blockEnd - at);
      addRange(unreadable, at, blockEnd);
    }
    at = blockEnd;
  }
  return end - position;
}

/** Every range of the file at `path` that the storage refuses (one pass over the file). */
export function findUnreadable(path: string): ByteRange[] {
  const unreadable: ByteRange[] = [];
  const fd = openSync(fsPath(path), constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const buffer = new Uint8Array(1 << 20);
    for (let position = 0; ; position += buffer.length) {
      if (readSalvaging(fd, buffer, buffer.length, position, unreadable) < buffer.length) break;
    }
  } finally {
    closeSync(fd);
  }
  return unreadable;
}

/**
 * Copies what can be read of `source` into a new file `target` (created
 * exclusively, mode 0600: the caller gives it its own), zeros where the
 * storage refuses bytes; feeds the bytes written to `hasher`. Returns the
 * refused ranges.
 */
export function copyReadable(source: string, target: string, hasher?: Bun.CryptoHasher): ByteRange[] {
  const unreadable: ByteRange[] = [];
  const from = openSync(fsPath(source), constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const to = openSync(fsPath(target), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      const buffer = new Uint8Array(1 << 20);
      for (let position = 0; ; position += buffer.length) {
        const got = readSalvaging(from, buffer, buffer.length, position, unreadable);
        const data = buffer.subarray(0, got);
        hasher?.update(data);
        for (let written = 0; written < got; ) written += writeSync(to, data, written, got - written, position + written);
        if (got < buffer.length) break;
      }
    } finally {
      closeSync(to);
    }
  } finally {
    closeSync(from);
  }
  return unreadable;
}

/** `bytes 147456–151551, 200704–204799` (inclusive ends, as people count them). */
export function describeRanges(ranges: readonly ByteRange[]): string {
  const shown = ranges.slice(0, 8).map((range) => `${range.start}–${range.end - 1}`);
  if (ranges.length > shown.length) shown.push(`and ${ranges.length - shown.length} more ranges`);
  return `bytes ${shown.join(", ")}`;
}

/** What a reader says of a file it could not read whole: `cannot read bytes 147456–151551 (EIO)`. */
export function describeUnreadable(path: string, error: unknown): string {
  let ranges: ByteRange[];
  try {
    ranges = findUnreadable(path);
  } catch {
    ranges = [];
  }
  const code = errnoCode(error) ?? "error";
  return ranges.length > 0 ? `cannot read ${describeRanges(ranges)} (${code})` : `cannot be read (${code})`;
}

function addRange(ranges: ByteRange[], start: number, end: number): void {
  const last = ranges.at(-1);
  if (last && last.end === start) ranges[ranges.length - 1] = { start: last.start, end };
  else ranges.push({ start, end });
}

function readFully(fd: number, into: Uint8Array, offset: number, length: number, position: number): number {
  let got = 0;
  while (got < length) {
    const n = readSync(fd, into, offset + got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}
