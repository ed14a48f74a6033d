/**
 * Checks the files of a recovery set against it, slice by slice at their
 * places (CRC32 first, MD5 where the CRC matches), so a damaged file shows
 * exactly which slices need repair. Slices not at their place are then
 * looked for by content in the files given as extra (and, if asked, in the
 * damaged files themselves: data shifted by inserted or deleted bytes). Bytes the storage refuses to read (EIO
 * from a bad sector or an encrypted disk's damaged block) are read around:
 * the slices they fall in are damaged like any other.
 */
import { closeSync, openSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fsPath } from "../fs/byte-names.ts";
import { readSalvaging, type ByteRange } from "../fs/salvage-read.ts";
import { equalBytes, hashZeros, md5 } from "./packets.ts";
import { findSlices, type FoundSlice, type WantedSlice } from "./find-slices.ts";
import { loadRecoverySet, type RecoverySet, type SetEntry } from "./recovery-set.ts";
import { SCRATCH_READ, scratchBuffer } from "./scratch.ts";

export interface FileCheck {
  readonly name: string;
  readonly path: string;
  readonly length: number;
  readonly status: "intact" | "damaged" | "missing";
  /** Indices (within the file) of slices that are not intact. */
  readonly badSlices: readonly number[];
  readonly slices: number;
  /** Byte ranges the storage refused to read (their slices are in badSlices). */
  readonly unreadable: readonly ByteRange[];
}

export interface SetCheck {
  readonly set: RecoverySet;
  readonly files: readonly FileCheck[];
  /** Slices neither at their place nor found elsewhere: what recovery slices must rebuild. */
  readonly badSlices: number;
  /** Slices not at their place but found in another file (by content): copied from there on repair. */
  readonly found: readonly FoundSlice[];
  readonly recoveryAvailable: number;
  readonly repairable: boolean;
}

export interface VerifyOptions {
  /** Where a file named in the set is now (default: the name, relative to the set's directory). */
  readonly locate?: (name: string) => string;
  /** Other files to search for the set's missing slices at every byte offset (renamed files, pieces, shifted data). */
  readonly extraFiles?: readonly string[];
  /** Also search the damaged files themselves for slices moved within them (par2cmdline does). */
  readonly searchDamaged?: boolean;
  /** -N/-S: search only near where slices would follow each other (see find-slices.ts). */
  readonly skip?: { readonly leeway: number };
  readonly signal?: AbortSignal;
  /** Bytes of the set's files read at their places so far, as they are read (for a progress display). */
  readonly onProgress?: (bytes: number) => void;
}

/** What a file's check reports to as it reads: the caller's abort and progress. */
interface Reading {
  readonly signal?: AbortSignal;
  readonly onProgress?: (bytes: number) => void;
  /** Bytes read since this thread last let other work run. */
  sinceYield: number;
}

/**
 * Bytes a check reads between turns given to other work: a file is checked
 * in one go, and a progress line redraws on a timer that must get its turn
 * (a 100 GB file takes minutes); at 64 MiB a turn costs nothing measurable.
 */
const YIELD_BYTES = 64 * 1024 * 1024;

/** Counts `bytes` read, and lets timers and I/O run every YIELD_BYTES. */
async function readDone(reading: Reading, bytes: number): Promise<void> {
  reading.onProgress?.(bytes);
  reading.sinceYield += bytes;
  if (reading.sinceYield < YIELD_BYTES) return;
  reading.sinceYield = 0;
  await new Promise<void>((resolve) => setImmediate(resolve));
}

export async function verifyRecoverySet(setPath: string, options: VerifyOptions = {}): Promise<SetCheck> {
  const set = loadRecoverySet(setPath);
  return checkFiles(set, options);
}

export async function checkFiles(set: RecoverySet, options: VerifyOptions = {}): Promise<SetCheck> {
  const locate = options.locate ?? ((name: string) => join(dirname(set.setPath), name));
  const files: FileCheck[] = [];
  const reading: Reading = { signal: options.signal, onProgress: options.onProgress, sinceYield: 0 };
  for (const entry of set.entries) files.push(await checkFile(entry, locate(entry.description.name), set.sliceSize, reading));
  const wanted: WantedSlice[] = [];
  set.entries.forEach((entry, i) => {
    for (const k of files[i].badSlices) {
      wanted.push({ index: entry.firstSlice + k, checksum: entry.checksums[k], length: Math.min(set.sliceSize, entry.description.length - k * set.sliceSize) });
    }
  });
  const damaged = set.entries.flatMap((entry, i) => {
    if (!options.searchDamaged || files[i].status !== "damaged") return [];
    // Its good slices, merged into runs: only the bytes around the damage are searched.
    const bad = new Set(files[i].badSlices);
    const intact: { start: number; end: number }[] = [];
    for (let k = 0; k < entry.checksums.length; k++) {
      if (bad.has(k)) continue;
      const start = k * set.sliceSize;
      const end = Math.min(entry.description.length, start + set.sliceSize);
      if (intact.length > 0 && intact[intact.length - 1].end === start) intact[intact.length - 1].end = end;
      else intact.push({ start, end });
    }
    return [{ path: files[i].path, intact }];
  });
  const searched = [...(options.extraFiles ?? []), ...damaged];
  const found = wanted.length > 0 && searched.length > 0 ? findSlices(searched, wanted, set.sliceSize, { skip: options.skip, signal: options.signal }) : [];
  const badSlices = wanted.length - found.length;
  return { set, files, badSlices, found, recoveryAvailable: set.recovery.length, repairable: badSlices <= set.recovery.length };
}

/**
 * Whether `path` is a whole copy of one of the set's files (its size, the
 * MD5 of its first 16 KiB, then of all of it): -O, rename-only, takes other
 * files only so. Only files of a listed size are read, and of those only
 * the first 16 KiB unless it matches.
 */
export function isWholeCopy(path: string, set: RecoverySet): boolean {
  let size: number;
  try {
    const stats = statSync(fsPath(path));
    if (!stats.isFile()) return false;
    size = stats.size;
  } catch {
    return false;
  }
  const candidates = set.entries.map((entry) => entry.description).filter((description) => description.length === size);
  if (candidates.length === 0) return false;
  const fd = openSync(fsPath(path), "r");
  try {
    const buffer = new Uint8Array(Math.min(size, 4 * 1024 * 1024));
    const first = readSalvaging(fd, buffer, Math.min(size, FIRST_BYTES), 0, []);
    const firstMd5 = md5(buffer.subarray(0, first));
    const matching = candidates.filter((description) => equalBytes(description.md5First16k, firstMd5));
    if (matching.length === 0) return false;
    const whole = new Bun.CryptoHasher("md5").update(buffer.subarray(0, first));
    for (let offset = first; offset < size; ) {
      const unreadable: ByteRange[] = [];
      const got = readSalvaging(fd, buffer, Math.min(buffer.length, size - offset), offset, unreadable);
      if (got === 0 || unreadable.length > 0) return false;
      whole.update(buffer.subarray(0, got));
      offset += got;
    }
    const digest = new Uint8Array(whole.digest().buffer);
    return matching.some((description) => equalBytes(description.md5, digest));
  } finally {
    closeSync(fd);
  }
}

/** PAR2's "first 16 KiB" hash covers this many bytes. */
const FIRST_BYTES = 16 * 1024;

async function checkFile(entry: SetEntry, path: string, sliceSize: number, reading: Reading): Promise<FileCheck> {
  const { description, checksums } = entry;
  const all = checksums.map((_, i) => i);
  const base = { name: description.name, path, length: description.length, slices: checksums.length };
  const unreadable: ByteRange[] = [];
  let actualLength: number;
  let fd: number;
  try {
    actualLength = statSync(fsPath(path)).size;
    fd = openSync(fsPath(path), "r");
  } catch {
    return { ...base, status: "missing", badSlices: all, unreadable };
  }
  const bad: number[] = [];
  try {
    if (sliceSize > SCRATCH_READ) await checkLargeSlices(fd, entry, sliceSize, bad, unreadable, reading);
    else await checkSmallSlices(fd, entry, sliceSize, bad, unreadable, reading);
  } finally {
    closeSync(fd);
  }
  const intact = bad.length === 0 && actualLength === description.length;
  return { ...base, status: intact ? "intact" : "damaged", badSlices: bad, unreadable };
}

/** Slices of at most SCRATCH_READ: as many as fit in a read at once. */
async function checkSmallSlices(fd: number, entry: SetEntry, sliceSize: number, bad: number[], unreadable: ByteRange[], reading: Reading): Promise<void> {
  const { description, checksums } = entry;
  const slicesPerRead = Math.max(1, Math.min(checksums.length, Math.floor(SCRATCH_READ / sliceSize)));
  const buffer = scratchBuffer(slicesPerRead * sliceSize);
  for (let first = 0; first < checksums.length; first += slicesPerRead) {
    reading.signal?.throwIfAborted();
    const start = first * sliceSize;
    const wanted = Math.min(buffer.length, description.length - start);
    const got = readSalvaging(fd, buffer, wanted, start, unreadable);
    buffer.fill(0, got);
    for (let k = 0; k < slicesPerRead && first + k < checksums.length; k++) {
      const index = first + k;
      const sliceStart = k * sliceSize;
      // Zeros stand for refused bytes: the slice is damaged even if zeros were its data.
      if (overlaps(unreadable, start + sliceStart, sliceSize)) {
        bad.push(index);
        continue;
      }
      // A slice past the end of a truncated file is missing, even if it would be all zeros.
      if (sliceStart >= got) {
        bad.push(index);
        continue;
      }
      const slice = buffer.subarray(sliceStart, sliceStart + sliceSize);
      const expected = checksums[index];
      if ((Bun.hash.crc32(slice) >>> 0) !== expected.crc32 || !equalBytes(md5(slice), expected.md5)) bad.push(index);
    }
    // Its bytes are used up before this waits its turn: another reader may fill the scratch buffer meanwhile.
    await readDone(reading, wanted);
  }
}

/**
 * Slices larger than SCRATCH_READ (2000 slices of a file of 2 GB and more,
 * par2cmdline's default count): each hashed in reads of SCRATCH_READ, CRC32
 * and MD5 together, so a verify holds a megabyte whatever the slice size
 * (a whole slice of a 100 GB file's set is 50 MB).
 */
async function checkLargeSlices(fd: number, entry: SetEntry, sliceSize: number, bad: number[], unreadable: ByteRange[], reading: Reading): Promise<void> {
  const { description, checksums } = entry;
  const buffer = scratchBuffer(SCRATCH_READ);
  for (let index = 0; index < checksums.length; index++) {
    const start = index * sliceSize;
    const wanted = Math.min(sliceSize, description.length - start);
    const hasher = new Bun.CryptoHasher("md5");
    let crc = 0;
    let got = 0;
    while (got < wanted) {
      reading.signal?.throwIfAborted();
      const step = Math.min(buffer.length, wanted - got);
      const read = readSalvaging(fd, buffer, step, start + got, unreadable);
      hasher.update(buffer.subarray(0, read));
      crc = Bun.hash.crc32(buffer.subarray(0, read), crc);
      got += read;
      await readDone(reading, step);
      if (read < step) break;
    }
    // Zeros stand for refused bytes; a slice past the end of a truncated file is missing, even if it would be all zeros.
    if (overlaps(unreadable, start, sliceSize) || got === 0) {
      bad.push(index);
      continue;
    }
    // As in the set: the slice zero-padded to the slice size (the file's last one, or what is left of a truncated one).
    if (got < sliceSize) crc = hashZeros(hasher, crc, sliceSize - got, buffer.fill(0));
    const expected = checksums[index];
    if (crc >>> 0 !== expected.crc32 || !equalBytes(new Uint8Array(hasher.digest().buffer), expected.md5)) bad.push(index);
  }
}

function overlaps(ranges: readonly ByteRange[], from: number, length: number): boolean {
  return ranges.some((range) => range.start < from + length && range.end > from);
}
