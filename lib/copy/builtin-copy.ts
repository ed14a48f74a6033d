import { closeSync, constants, fchmodSync, fstatSync, openSync, readSync, write, writeSync } from "node:fs";
import { CHUNK_SIZE, formatHash, type HashAlgorithm } from "../hashing.ts";
import { fsPath } from "../fs/byte-names.ts";
import { exactMtime, setTimesFd } from "../fs/exact-mtime.ts";
import { copySparse, SPARSE_MIN_SIZE, sparseExtents } from "../fs/sparse.ts";
import { CopyProgress, type CopyProgressHook } from "./copy-progress.ts";
import type { ChecksumRequest, FileChecksums } from "./digest-ring.ts";

export interface CopyResult {
  readonly hash: string;
  readonly size: number;
  /** The source's size and mtime after the copy: compared with the walk to catch changing files. */
  readonly sourceAfter: { readonly size: number; readonly mtimeMs: number };
  /** The checksums the request asked for, computed from the copy's read (a copier may leave them out). */
  readonly checksums?: FileChecksums;
}

export interface CopyRequest {
  readonly source: string;
  readonly target: string;
  readonly algorithm: HashAlgorithm;
  readonly mode: number;
  readonly mtimeMs: number;
  /** The nanoseconds of the mtime's second, exact (see exact-mtime.ts); null or absent: as mtimeMs allows. */
  readonly mtimeNsec?: number | null;
  /** The size the walk saw (a hint for scheduling; the copy reads to the end whatever it is). */
  readonly expectedSize?: number;
  readonly signal?: AbortSignal;
  /**
   * Also the file's MD5 and its blocks' MD5s and CRC32s, from the same read
   * (what a PAR2 set of the copy needs: see FileChecksums). A copier may
   * ignore it (this one does; the copy workers compute them).
   */
  readonly checksums?: ChecksumRequest;
  /** Told the bytes copied so far while a large file copies (the progress line); a copier may never call it. */
  readonly onProgress?: CopyProgressHook;
}

/** Below this a file is copied with one read and one write: small files are latency-bound. */
const SMALL_FILE = 256 * 1024;

/** One copy's result or failure, for copies requested together. */
export type CopySettled = { readonly ok: true; readonly result: CopyResult } | { readonly ok: false; readonly error: unknown };

/**
 * Below this a file is latency-bound: copied within its group by
 * `copy.many`, and sent to the CopyPool's first worker when copied alone.
 */
export const LATENCY_BOUND_BELOW = 1024 * 1024;

/**
 * Copies and hashes in one pass on the calling thread (restore uses it; a
 * run copies through the CopyPool's worker threads). For large files the hash of chunk n runs on
 * this thread while chunk n-1 is written by the I/O thread pool, so copying
 * uses both cores. The target gets the source's mode and mtime; durability
 * comes later from one syncfs per batch (see DiskWriter).
 */
export async function copyWithHash(request: CopyRequest): Promise<CopyResult> {
  const source = openSync(fsPath(request.source), constants.O_RDONLY | constants.O_NOFOLLOW);
  let target: number | undefined;
  try {
    target = openSync(fsPath(request.target), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    const hasher = new Bun.CryptoHasher(request.algorithm);
    const size = fstatSync(source).size;
    // Holes stay holes (a disk's copy, a restored file): see sparse.ts.
    const sparse = size >= SPARSE_MIN_SIZE ? sparseExtents(source) : undefined;
    const progress = request.onProgress && new CopyProgress(request.onProgress);
    const copied = sparse
      ? copySparse(source, target, sparse.size, sparse.extents, hasher, Buffer.allocUnsafe(CHUNK_SIZE), progress)
      : size <= SMALL_FILE
        ? copySmall(source, target, hasher, size)
        : await copyLarge(source, target, hasher, request.signal, progress);
    fchmodSync(target, request.mode);
    setTimesFd(target, exactMtime(request.mtimeMs, request.mtimeNsec));
    const after = fstatSync(source);
    return { hash: formatHash(request.algorithm, hasher), size: copied, sourceAfter: { size: after.size, mtimeMs: after.mtimeMs } };
  } finally {
    closeSync(source);
    if (target !== undefined) closeSync(target);
  }
}

function copySmall(source: number, target: number, hasher: Bun.CryptoHasher, size: number): number {
  // One byte more than stat said, so a file that grew is read to its end.
  const buffer = Buffer.allocUnsafe(size + 1);
  let total = 0;
  for (;;) {
    const read = readSync(source, buffer, total, buffer.length - total, null);
    if (read === 0) break;
    total += read;
    if (total === buffer.length) {
      hasher.update(buffer);
      writeAll(target, buffer);
      return total + copyRestSync(source, target, hasher);
    }
  }
  const data = buffer.subarray(0, total);
  hasher.update(data);
  writeAll(target, data);
  return total;
}

function copyRestSync(source: number, target: number, hasher: Bun.CryptoHasher): number {
  const buffer = Buffer.allocUnsafe(CHUNK_SIZE);
  let total = 0;
  for (;;) {
    const read = readSync(source, buffer, 0, buffer.length, null);
    if (read === 0) return total;
    hasher.update(buffer.subarray(0, read));
    writeAll(target, buffer.subarray(0, read));
    total += read;
  }
}

async function copyLarge(source: number, target: number, hasher: Bun.CryptoHasher, signal?: AbortSignal, progress?: CopyProgress): Promise<number> {
  const buffers = [Buffer.allocUnsafe(CHUNK_SIZE), Buffer.allocUnsafe(CHUNK_SIZE)];
  let writing: Promise<void> | undefined;
  let total = 0;
  try {
    for (let turn = 0; ; turn++) {
      signal?.throwIfAborted();
      // This buffer's previous write was awaited one turn ago.
      const buffer = buffers[turn & 1];
      const read = readSync(source, buffer, 0, buffer.length, null);
      if (read === 0) break;
      const chunk = buffer.subarray(0, read);
      hasher.update(chunk);
      if (writing) await writing;
      writing = writeAllAsync(target, chunk);
      total += read;
      progress?.reached(total);
    }
  } catch (error) {
    // A refused read (EIO on a damaged disk) or an abort ends the copy with the last chunk's
    // write maybe still queued on the I/O threads. The caller closes the target next, so that
    // write must be over first: run later, it fails with EBADF (an unhandled rejection that ends
    // the process) or lands in whatever file has taken the descriptor number meanwhile.
    await writing?.catch(() => undefined);
    throw error;
  }
  if (writing) await writing;
  return total;
}

function writeAll(fd: number, data: Uint8Array): void {
  let offset = 0;
  while (offset < data.length) offset += writeSync(fd, data, offset, data.length - offset);
}

async function writeAllAsync(fd: number, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) offset += await writeFd(fd, data, offset);
}

/** fs/promises' write wants a FileHandle; the callback API takes the raw fd. */
function writeFd(fd: number, data: Uint8Array, offset: number): Promise<number> {
  return new Promise((resolve, reject) => {
    write(fd, data, offset, data.length - offset, null, (error, written) => (error ? reject(error) : resolve(written)));
  });
}
