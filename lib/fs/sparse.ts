/**
 * Sparse files: where their data is, and copying them hole for hole. A file
 * is sparse when it has fewer bytes allocated (st_blocks × 512) than its
 * size; its data ranges come from lseek(2) SEEK_DATA/SEEK_HOLE through
 * bun:ffi (Linux; elsewhere, or where the call cannot be loaded, the whole
 * file counts as data and is copied dense, as before). Holes read as zeros,
 * so the hash of a sparse copy is the hash of its full logical content.
 */
import { fstatSync, ftruncateSync, readSync, statSync, writeSync } from "node:fs";
import { CHUNK_SIZE } from "../hashing.ts";
import { fsPath } from "./byte-names.ts";

/** A data range of a file: [start, end). */
export type Extent = readonly [start: number, end: number];

const SEEK_DATA = 3;
const SEEK_HOLE = 4;
/** Below this nothing is looked at for holes: a few blocks are not worth the system calls. */
export const SPARSE_MIN_SIZE = 64 * 1024;

type Lseek = (fd: number, offset: number, whence: number) => number | bigint;
let lseek: Lseek | null | undefined;

function loadLseek(): Lseek | null {
  if (process.platform !== "linux") return null;
  try {
    const { dlopen, FFIType } = require("bun:ffi") as typeof import("bun:ffi");
    const libc = dlopen("libc.so.6", { lseek: { args: [FFIType.i32, FFIType.i64, FFIType.i32], returns: FFIType.i64_fast } });
    return libc.symbols.lseek as unknown as Lseek;
  } catch {
    return null;
  }
}

/** Bytes a file takes on its file system: st_blocks × 512 (the size where blocks are unknown). */
export function allocatedBytes(stats: { readonly size: number; readonly blocks?: number }): number {
  return typeof stats.blocks === "number" && Number.isFinite(stats.blocks) ? stats.blocks * 512 : stats.size;
}

/** Whether a file of these stats has holes worth keeping. */
export function looksSparse(stats: { readonly size: number; readonly blocks?: number }): boolean {
  return stats.size >= SPARSE_MIN_SIZE && allocatedBytes(stats) < stats.size;
}

/** What the file at `path` takes on its file system, for the space it needs on a disk (its size when it is not sparse). */
export function bytesOnDisk(path: string, size: number): number {
  if (size < SPARSE_MIN_SIZE) return size;
  try {
    const stats = statSync(fsPath(path));
    return looksSparse(stats) ? Math.min(size, allocatedBytes(stats)) : size;
  } catch {
    return size;
  }
}

/**
 * The data ranges of the open file `fd` of `size` bytes, in order; undefined
 * when holes cannot be found here (copy it dense).
 */
export function dataExtents(fd: number, size: number): Extent[] | undefined {
  lseek ??= loadLseek();
  if (!lseek) return undefined;
  const extents: [number, number][] = [];
  let offset = 0;
  while (offset < size) {
    const data = Number(lseek(fd, offset, SEEK_DATA));
    // -1: ENXIO, no data at or after offset (the rest is a hole); any other failure also lands here,
    // and then the file is copied dense.
    if (data < 0) {
      if (offset === 0 && extents.length === 0 && Number(lseek(fd, 0, SEEK_HOLE)) < 0) return undefined;
      break;
    }
    if (data >= size) break;
    const hole = Number(lseek(fd, data, SEEK_HOLE));
    const end = hole < 0 || hole > size ? size : hole;
    extents.push([data, end]);
    offset = end;
  }
  return extents;
}

/** The data ranges of an open file when it is sparse (fewer blocks than its size) and they can be found. */
export function sparseExtents(fd: number): { size: number; extents: Extent[] } | undefined {
  const stats = fstatSync(fd);
  if (!looksSparse(stats)) return undefined;
  const extents = dataExtents(fd, stats.size);
  return extents ? { size: stats.size, extents } : undefined;
}

let zeros: Buffer | undefined;

/** Feeds `length` zero bytes to `hasher` (a hole, hashed as the zeros it reads as). */
export function hashZeros(hasher: Bun.CryptoHasher, length: number): void {
  zeros ??= Buffer.alloc(CHUNK_SIZE);
  let left = length;
  while (left > 0) {
    const step = Math.min(left, zeros.length);
    hasher.update(step === zeros.length ? zeros : zeros.subarray(0, step));
    left -= step;
  }
}

/**
 * Copies the data ranges of `source` (open, `size` bytes) into `target` (open,
 * empty) at their offsets, leaving the holes unwritten, and hashes the full
 * logical content. Returns the bytes of the logical file (its size).
 * `progress` (a CopyProgress) hears the offset reached as data is copied.
 */
export function copySparse(source: number, target: number, size: number, extents: readonly Extent[], hasher: Bun.CryptoHasher, buffer: Buffer, progress?: { reached(bytesSoFar: number): void }): number {
  let at = 0;
  for (const [start, end] of extents) {
    hashZeros(hasher, start - at);
    let offset = start;
    while (offset < end) {
      const read = readSync(source, buffer, 0, Math.min(buffer.length, end - offset), offset);
      if (read === 0) break;
      const chunk = buffer.subarray(0, read);
      hasher.update(chunk);
      let written = 0;
      while (written < read) written += writeSync(target, chunk, written, read - written, offset + written);
      offset += read;
      progress?.reached(offset);
    }
    at = offset;
  }
  hashZeros(hasher, size - at);
  // The trailing hole (and the size itself) come from the length alone.
  ftruncateSync(target, size);
  return size;
}
