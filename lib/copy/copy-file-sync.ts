import { closeSync, constants, fchmodSync, fstatSync, openSync, readSync, writeSync } from "node:fs";
import { CHUNK_SIZE, formatHash, hashBytes } from "../hashing.ts";
import { fsPath } from "../fs/byte-names.ts";
import { exactMtime, setTimesFd } from "../fs/exact-mtime.ts";
import { startWriteback } from "../fs/atomic.ts";
import { copySparse, SPARSE_MIN_SIZE, sparseExtents } from "../fs/sparse.ts";
import type { CopyRequest, CopyResult } from "./builtin-copy.ts";
import type { CopyProgress } from "./copy-progress.ts";
import type { CopyDigests } from "./copy-digests.ts";

/** A copy request as plain data, to cross to a worker thread (an AbortSignal cannot). */
export type CopyJob = Omit<CopyRequest, "signal" | "onProgress">;
export type CopyOutcome = CopyResult;

/** This process' umask, read once (copies are created with it applied). */
let umask: number | undefined;

/**
 * Copies and hashes in one pass with plain synchronous calls: what a copy
 * worker thread runs (a thread of its own, so blocking is what we want).
 * The target is created exclusively, gets the source's mode and mtime, and
 * is made durable later by the batch's syncfs. `progress` hears how far a
 * large file has got (see CopyProgress). A job asking for `checksums` gets
 * them from `digests`' threads, fed from this same read (a sparse source
 * gets none: its holes are never read).
 */
export function copyFileSync(job: CopyJob, buffer: Buffer, progress?: CopyProgress, digests?: CopyDigests): CopyOutcome {
  umask ??= process.umask();
  // Created with its final mode when the umask keeps every bit of it (the
  // usual case): one chmod less per file. Otherwise private first, chmod after.
  const exactAtCreate = (job.mode & 0o7000) === 0 && (job.mode & umask) === 0;
  // Paths cross from the run as strings (JSON); names that are not UTF-8 become bytes only here.
  const source = openSync(fsPath(job.source), constants.O_RDONLY | constants.O_NOFOLLOW);
  let target: number | undefined;
  try {
    target = openSync(fsPath(job.target), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, exactAtCreate ? job.mode : 0o600);
    let hasher: Bun.CryptoHasher | undefined;
    let wholeFileHash: string | undefined;
    let size = 0;
    // A file that may be sparse is asked (one fstat more, for large files only): its holes stay holes.
    const sparse = (job.expectedSize ?? 0) >= SPARSE_MIN_SIZE ? sparseExtents(source) : undefined;
    if (sparse) {
      hasher = new Bun.CryptoHasher(job.algorithm);
      size = copySparse(source, target, sparse.size, sparse.extents, hasher, buffer, progress);
    }
    const digesting = !sparse && job.checksums && digests ? digests.start(job.checksums, job.expectedSize ?? 0) : undefined;
    let checksums: CopyOutcome["checksums"];
    let writtenBack = 0;
    try {
      while (!sparse) {
        const into = digesting?.slot() ?? buffer;
        const read = readSync(source, into, 0, into.length, null);
        const chunk = into.subarray(0, read);
        // A short read of a regular file is its end: the read that would
        // return 0 is spared (a third of a small file's reads). A file that
        // grows meanwhile shows in the size checked after the copy.
        const end = read < into.length;
        // A file read whole in one go is hashed in one call (no hasher object per small file).
        if (end && !hasher) wholeFileHash = hashBytes(job.algorithm, chunk);
        else (hasher ??= new Bun.CryptoHasher(job.algorithm)).update(chunk);
        // The digest threads read the chunk while this one writes it.
        digesting?.publish(read);
        let written = 0;
        while (written < read) written += writeSync(target, chunk, written, read - written);
        size += read;
        if (end) break;
        progress?.reached(size);
        if (size - writtenBack >= WRITEBACK_BYTES) {
          startWriteback(target, writtenBack, size - writtenBack);
          writtenBack = size;
        }
      }
      checksums = digesting?.finish();
    } catch (error) {
      digesting?.abort();
      throw error;
    }
    if (!exactAtCreate) fchmodSync(target, job.mode);
    setTimesFd(target, exactMtime(job.mtimeMs, job.mtimeNsec));
    const after = fstatSync(source);
    return { hash: wholeFileHash ?? formatHash(job.algorithm, hasher!), size, sourceAfter: { size: after.size, mtimeMs: after.mtimeMs }, checksums };
  } finally {
    closeSync(source);
    if (target !== undefined) closeSync(target);
  }
}

export const COPY_BUFFER_SIZE = CHUNK_SIZE;
/**
 * A large copy asks the kernel to start writing its bytes out every this
 * many (see startWriteback). Left alone, the kernel keeps a tenth of memory
 * dirty before it writes, and the batch's syncfs waits for all of it: 1.7 s
 * of a 4 GiB copy at 300 MB/s here, 0.1 s with the writes started as it goes.
 */
const WRITEBACK_BYTES = 16 * 1024 * 1024;
