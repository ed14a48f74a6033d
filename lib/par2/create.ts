/**
 * Creates a PAR2 2.0 recovery set: hashes every slice (MD5 + CRC32, the last
 * one zero-padded), computes the recovery slices (slice-multiply.ts) while
 * the hashing runs, and lays out the index file and vol files as par2cmdline
 * does, each file written atomically (synced, or left to the caller's syncfs).
 */
import { closeSync, existsSync, openSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { crashPoint } from "../crash-point.ts";
import { fsyncDirectory } from "../fs/atomic.ts";
import { fsPath } from "../fs/byte-names.ts";
import { hashZeros, sparseExtents } from "../fs/sparse.ts";
import { open, type FileHandle } from "node:fs/promises";
import { inputConstantLogs, recoveryCoefficient } from "./gf16.ts";
import type { KernelName } from "./kernel.ts";
import {
  creatorBody, fileDescriptionBody, fileIdOf, HEADER_BYTES, mainBody, md5, packet, packetHeader, PacketType, recoveryPrefix, sliceChecksumsBody,
  type FileDescription, type SliceChecksum,
} from "./packets.ts";
import { readAt } from "./read-at.ts";
import { multiplySlices } from "./slice-multiply.ts";
import {
  chooseSliceSize, MAX_RECOVERY_SLICES, recoveryCountFor, recoveryCountForBytes, recoveryFileSizes, sliceCountFor, volumeNames, type RecoveryFileScheme,
} from "./sizing.ts";
import type { SliceSource } from "./slice-accumulator.ts";
import { PendingFile, setBase } from "./write-set.ts";
import type { SliceHashReply, SliceHashRequest } from "./slice-hash-worker.ts";
import type { FileChecksums } from "../copy/digest-ring.ts";

export const CREATOR = "Blaine 0.1.0 (built-in PAR2 engine)";

export interface SetFile {
  /** Where to read the file now. */
  readonly path: string;
  /** The name stored in the set: relative to the set's directory, `/`-separated. */
  readonly name: string;
  /**
   * The file's checksums, known already (an archive run computes them while
   * it copies the file): used when their block size is the set's slice size,
   * and then the file is read only for the recovery slices.
   */
  readonly checksums?: FileChecksums;
}

export interface CreateOptions {
  readonly files: readonly SetFile[];
  /** -s: slice ("block") size in bytes, a multiple of 4. */
  readonly sliceSize?: number;
  /** -b: most input slices (default 2000). */
  readonly blockCount?: number;
  /** Smallest slice size to choose (default 1 KiB without -b, else 4). */
  readonly minSliceSize?: number;
  /** -r: redundancy in percent of the input slices (default 5). */
  readonly redundancy?: number;
  /** -c: recovery slices, instead of -r. */
  readonly recoveryCount?: number;
  /** -rk/-rm/-rg: recovery slices to fill about this many bytes of vol files, instead of -r. */
  readonly recoveryBytes?: number;
  /** -n: recovery (vol) files; default one per bit of the recovery count (par2cmdline's rule). */
  readonly recoveryFileCount?: number;
  /** How slices are spread over the vol files: variable (default: doubling), uniform (-u) or limited (-l). */
  readonly recoveryFileScheme?: RecoveryFileScheme;
  /** -f: first recovery exponent. */
  readonly firstExponent?: number;
  readonly kernel?: KernelName | "auto";
  readonly threads?: number;
  /** This thread computes a share of the products (see MultiplyOptions.shareCallingThread). */
  readonly shareCallingThread?: boolean;
  readonly signal?: AbortSignal;
  /** fsync each file and the directory (default); false leaves durability to the caller's syncfs. */
  readonly sync?: boolean;
  /** Replace files of an existing set of the same name instead of refusing. */
  readonly replace?: boolean;
  /** Bytes the recovery computation may hold (par2cmdline's -m); default slice-multiply's DEFAULT_MEMORY. */
  readonly memory?: number;
  /** Input bytes through the encoder so far (each byte once, whatever the passes), for a progress display. */
  readonly onProgress?: (bytes: number) => void;
}

/** A set written: the index file first, then the vol files. */
export interface CreatedSet {
  readonly setId: Uint8Array;
  readonly sliceSize: number;
  readonly inputSlices: number;
  readonly recoveryCount: number;
  readonly paths: readonly string[];
  /** Bytes of all the set's files. */
  readonly bytes: number;
  /** Files left out because they are empty (an empty file has no slices to protect). */
  readonly skippedEmpty: readonly string[];
}

/** Byte order par2cmdline sorts file IDs in (as 128-bit little-endian numbers); the order numbers the slices. */
function compareFileIds(a: Uint8Array, b: Uint8Array): number {
  for (let i = 15; i >= 0; i--) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

function firstBytesMd5(path: string, length: number): Uint8Array {
  const head = new Uint8Array(Math.min(16384, length));
  const fd = openSync(fsPath(path), "r");
  try {
    if (readAt(fd, head, head.length, 0) < head.length) throw new Error(`${path} is shorter than its ${length} bytes`);
  } finally {
    closeSync(fd);
  }
  return md5(head);
}

interface PlannedFile extends SetFile {
  readonly length: number;
  readonly md5First16k: Uint8Array;
  readonly fileId: Uint8Array;
  readonly firstSlice: number;
}

/**
 * Writes the recovery set SET.par2 (and its vol files) for `options.files`.
 * Recovery packets are written range by range as they are computed, so
 * memory holds one range of the recovery slices, never all of them.
 */
export async function createRecoverySet(setPath: string, options: CreateOptions): Promise<CreatedSet> {
  const sized = options.files.map((file) => ({ ...file, length: statSync(fsPath(file.path)).size }));
  const skippedEmpty = sized.filter((f) => f.length === 0).map((f) => f.name);
  const nonEmpty = sized.filter((f) => f.length > 0);
  if (nonEmpty.length === 0) throw new RangeError("nothing to protect: every file is empty");
  const names = new Set<string>();
  for (const file of nonEmpty) {
    if (names.has(file.name)) throw new RangeError(`${file.name} is given twice`);
    names.add(file.name);
  }

  const sliceSize = chooseSliceSize(nonEmpty.map((f) => f.length), options);
  const inputSlices = sliceCountFor(nonEmpty.map((f) => f.length), sliceSize);
  const largestFileSlices = Math.ceil(Math.max(...nonEmpty.map((f) => f.length)) / sliceSize);
  const fileLayout = { scheme: options.recoveryFileScheme, fileCount: options.recoveryFileCount, largestFileSlices };
  const recoveryCount =
    options.recoveryCount ??
    (options.recoveryBytes !== undefined
      ? recoveryCountForBytes(options.recoveryBytes, inputSlices, sliceSize, fileLayout)
      : recoveryCountFor(inputSlices, options.redundancy ?? 5));
  const firstExponent = options.firstExponent ?? 0;
  if (!Number.isInteger(recoveryCount) || recoveryCount < 0 || firstExponent < 0 || firstExponent + recoveryCount > MAX_RECOVERY_SLICES) {
    throw new RangeError(`recovery blocks ${firstExponent}..${firstExponent + recoveryCount - 1} exceed PAR2's limit of ${MAX_RECOVERY_SLICES}`);
  }

  const identified = nonEmpty
    .map((file) => {
      const known = knownChecksums(file, sliceSize);
      const md5First16k = known?.md5First16k ?? firstBytesMd5(file.path, file.length);
      // From here on a file carries checksums only when they are of this set's slices.
      return { ...file, checksums: known, md5First16k, fileId: fileIdOf(md5First16k, file.length, file.name) };
    })
    .sort((a, b) => compareFileIds(a.fileId, b.fileId));
  let nextSlice = 0;
  const planned: PlannedFile[] = identified.map((file) => {
    const firstSlice = nextSlice;
    nextSlice += Math.ceil(file.length / sliceSize);
    return { ...file, firstSlice };
  });

  // The set ID needs only the file IDs, so recovery packets can be written as each pass finishes.
  const main = mainBody({ sliceSize, fileIds: planned.map((f) => f.fileId), nonRecoveryFileIds: [] });
  const setId = md5(main);
  const base = setBase(setPath);
  const sizes = recoveryFileSizes(recoveryCount, fileLayout);
  const volumePaths = volumeNames(base, firstExponent, sizes);
  const finalPaths = [`${base}.par2`, ...volumePaths];
  if (!options.replace) {
    const existing = finalPaths.find((path) => existsSync(path));
    // An EEXIST, as par2cmdline answers it (exit 6, a file that cannot be written), never a bad command line.
    if (existing) throw Object.assign(new Error(`${existing} already exists; remove the old recovery set first`), { code: "EEXIST" });
  }
  const pending: PendingFile[] = [];
  const volumeOf: number[] = sizes.flatMap((size, i) => Array<number>(size).fill(i));
  // Where each recovery packet starts in its vol file: the packets come first, in exponent order.
  const packetBytes = HEADER_BYTES + 4 + sliceSize;
  const packetAt: number[] = sizes.flatMap((size) => Array.from({ length: size }, (_, i) => i * packetBytes));

  // Slices that lie wholly in a hole of a sparse file are zero: they add
  // nothing to a recovery slice, so only the others are read and multiplied
  // (the set is the same, and standard: a hole's slices are zero slices).
  const holes = planned.map((file) => holeSlices(file.path, file.length, sliceSize));
  const sources: SliceSource[] = [];
  const inputIndex: number[] = [];
  planned.forEach((file, f) => {
    for (let offset = 0, slice = 0; offset < file.length; offset += sliceSize, slice++) {
      if (holes[f]?.has(slice)) continue;
      sources.push({ path: file.path, offset, length: Math.min(sliceSize, file.length - offset) });
      inputIndex.push(file.firstSlice + slice);
    }
  });
  if (sources.length === 0) {
    // All holes: one zero slice as the input keeps the multiplication's shape (its products are zero).
    sources.push({ path: planned[0].path, offset: 0, length: Math.min(sliceSize, planned[0].length) });
    inputIndex.push(0);
  }
  const constantLogs = inputConstantLogs(inputSlices);
  let recovery: Promise<unknown> | undefined;
  try {
    for (const [volume, path] of volumePaths.entries()) pending[volume] = new PendingFile(path);
    // Each recovery packet's MD5 runs over its body as the ranges go out; the header is written last.
    const packetHashes = Array.from({ length: recoveryCount }, (_, output) => {
      const hasher = new Bun.CryptoHasher("md5");
      hasher.update(setId);
      hasher.update(PacketType.recoverySlice);
      hasher.update(recoveryPrefix(firstExponent + output));
      return hasher;
    });
    recovery = multiplySlices({
      sliceSize,
      outputCount: recoveryCount,
      inputs: sources,
      coefficient: (output, input) => recoveryCoefficient(constantLogs[inputIndex[input]], firstExponent + output),
      kernel: options.kernel,
      threads: options.threads,
      shareCallingThread: options.shareCallingThread,
      signal: options.signal,
      memory: options.memory,
      onProgress: options.onProgress,
      groupOutputs: true,
      onRange: (start, outputs, first) => {
        outputs.forEach((bytes, i) => {
          const output = first + i;
          pending[volumeOf[output]].writeAt(bytes, packetAt[output] + HEADER_BYTES + 4 + start);
          packetHashes[output].update(bytes);
        });
      },
    });
    // Its failure (a vol file that cannot be written: ENOSPC) is awaited below,
    // after the hashing; without a handler now it would count as unhandled meanwhile.
    recovery.catch(() => {});
    // Hashing (of files whose checksums are not known yet) runs here while the workers compute; both read the page cache.
    const hashed: { description: FileDescription; checksums: SliceChecksum[] }[] = [];
    for (const [f, file] of planned.entries()) {
      hashed.push(file.checksums ? fromKnown(file, file.checksums) : await hashFileSlices(file, sliceSize, holes[f], options.signal));
    }
    await recovery;
    packetHashes.forEach((hasher, output) => {
      const hash = new Uint8Array(hasher.digest().buffer);
      const head = packetHeader(setId, PacketType.recoverySlice, 4 + sliceSize, hash);
      const file = pending[volumeOf[output]];
      file.writeAt(head, packetAt[output]);
      file.writeAt(recoveryPrefix(firstExponent + output), packetAt[output] + HEADER_BYTES);
    });

    const critical: Uint8Array[] = [
      ...packet(setId, PacketType.main, main),
      ...hashed.flatMap(({ description, checksums }) => [
        ...packet(setId, PacketType.fileDescription, fileDescriptionBody(description)),
        ...packet(setId, PacketType.sliceChecksums, sliceChecksumsBody(description.fileId, checksums)),
      ]),
    ];
    const creator = packet(setId, PacketType.creator, creatorBody(CREATOR));
    // A vol file par2cmdline's layout leaves without recovery slices (`volN+0`) is still written
    // (it was opened above), so both tools make the same files.
    // Each vol file carries the critical packets too, so any one file can start a repair;
    // vol files go into place before the index, so an index is only ever beside a whole set.
    for (const volume of pending) volume.write([...critical, ...creator]);
    const index = new PendingFile(finalPaths[0]);
    pending.push(index);
    index.write([...critical, ...creator]);
    crashPoint("par2-create-before-commit");
    for (const file of pending) file.commit({ sync: options.sync });
    if (options.sync !== false) fsyncDirectory(dirname(setPath));
    const paths = [index.path, ...pending.slice(0, -1).map((file) => file.path)];
    return { setId, sliceSize, inputSlices, recoveryCount, paths, bytes: pending.reduce((sum, file) => sum + file.bytes, 0), skippedEmpty };
  } catch (error) {
    // The recovery passes may still be writing (the hashing failed first): they open no file once done.
    await recovery?.catch(() => {});
    for (const file of pending) file.abort();
    throw error;
  }
}

/** A file's checksums as given, when they are of this set's slices. */
function knownChecksums(file: SetFile & { readonly length: number }, sliceSize: number): FileChecksums | undefined {
  const known = file.checksums;
  if (!known || known.blockSize !== sliceSize || known.blockCrcs.length !== Math.ceil(file.length / sliceSize)) return undefined;
  return known.blockMd5s.length === known.blockCrcs.length * 16 ? known : undefined;
}

function fromKnown(file: PlannedFile, known: FileChecksums): { description: FileDescription; checksums: SliceChecksum[] } {
  const checksums = Array.from(known.blockCrcs, (crc32, k) => ({ md5: known.blockMd5s.subarray(k * 16, k * 16 + 16), crc32 }));
  return { description: { fileId: file.fileId, md5: known.md5, md5First16k: file.md5First16k, length: file.length, name: file.name }, checksums };
}

/**
 * The slices of a sparse file that lie wholly in a hole (numbered from 0 in
 * the file); undefined for a file without holes (or where they cannot be found).
 */
function holeSlices(path: string, length: number, sliceSize: number): Set<number> | undefined {
  const fd = openSync(fsPath(path), "r");
  try {
    const sparse = sparseExtents(fd);
    if (!sparse || sparse.size !== length) return undefined;
    const slices = Math.ceil(length / sliceSize);
    const hasData = new Uint8Array(slices);
    for (const [start, end] of sparse.extents) {
      for (let slice = Math.floor(start / sliceSize); slice < Math.min(slices, Math.ceil(end / sliceSize)); slice++) hasData[slice] = 1;
    }
    const holes = new Set<number>();
    hasData.forEach((data, slice) => {
      if (!data) holes.add(slice);
    });
    return holes.size > 0 ? holes : undefined;
  } finally {
    closeSync(fd);
  }
}

/** MD5 and CRC32 of a zero slice, by slice size (every hole slice has them). */
const zeroSliceChecksums = new Map<number, SliceChecksum>();

function zeroSliceChecksum(sliceSize: number): SliceChecksum {
  let checksum = zeroSliceChecksums.get(sliceSize);
  if (!checksum) {
    const zero = new Uint8Array(sliceSize);
    checksum = { md5: md5(zero), crc32: Bun.hash.crc32(zero) >>> 0 };
    zeroSliceChecksums.set(sliceSize, checksum);
  }
  return checksum;
}

/**
 * From this size on, the slices' MD5s and CRC32s are computed on a worker
 * thread of their own while this one computes the file's MD5: MD5 is
 * serial (~0.7 GB/s here), and the two streams in one thread were the
 * longest part of encoding a large file with 10 % parity.
 */
const SPLIT_HASHING_FROM = 64 * 1024 * 1024;
const SLICE_HASH_WORKER_URL = new URL("./slice-hash-worker.ts", import.meta.url).href;

/** The slices' checksums from a worker thread started for this file (ended when it answers, or on abort). */
function hashSlicesInWorker(request: SliceHashRequest, signal?: AbortSignal): Promise<SliceChecksum[]> {
  const worker = new Worker(SLICE_HASH_WORKER_URL);
  return new Promise<SliceChecksum[]>((resolve, reject) => {
    const onAbort = () => settle(() => reject(signal?.reason ?? new Error("aborted")));
    const settle = (action: () => void) => {
      signal?.removeEventListener("abort", onAbort);
      worker.terminate();
      action();
    };
    signal?.addEventListener("abort", onAbort);
    worker.onerror = (event) => settle(() => reject(new Error(`PAR2 slice hashing: ${event.message}`)));
    worker.onmessage = (event: MessageEvent<SliceHashReply>) => {
      const reply = event.data;
      if ("error" in reply) return settle(() => reject(new Error(reply.error)));
      const checksums = Array.from(reply.crcs, (crc32, k) => ({ md5: reply.md5s.subarray(k * 16, k * 16 + 16), crc32 }));
      settle(() => resolve(checksums));
    };
    worker.postMessage(request);
  });
}

/**
 * One pass over a file: its MD5, and each slice's MD5 and CRC32 (zero-padded
 * to the slice size; on another thread for a large file). Slices in `holes`
 * are not read: they are zeros.
 */
async function hashFileSlices(
  file: PlannedFile,
  sliceSize: number,
  holes: ReadonlySet<number> | undefined,
  signal?: AbortSignal,
): Promise<{ description: FileDescription; checksums: SliceChecksum[] }> {
  if (file.length >= SPLIT_HASHING_FROM) {
    const elsewhere = hashSlicesInWorker({ path: file.path, length: file.length, sliceSize, holes: [...(holes ?? [])] }, signal);
    // Its failure is awaited below, after the file's MD5; without a handler now it would count as unhandled meanwhile.
    elsewhere.catch(() => {});
    const whole = await fileMd5(file, sliceSize, holes, signal);
    return { description: describe(file, whole), checksums: await elsewhere };
  }
  const slicesPerRead = Math.max(1, Math.min(Math.ceil(file.length / sliceSize), Math.floor(READ_BYTES / sliceSize)));
  const buffer = new Uint8Array(slicesPerRead * sliceSize);
  const whole = new Bun.CryptoHasher("md5");
  const checksums: SliceChecksum[] = [];
  const handle = await open(fsPath(file.path), "r");
  try {
    let position = 0;
    while (position < file.length) {
      signal?.throwIfAborted();
      const slice = position / sliceSize;
      if (holes?.has(slice)) {
        const length = Math.min(sliceSize, file.length - position);
        hashZeros(whole, length);
        checksums.push(zeroSliceChecksum(sliceSize));
        position += length;
        continue;
      }
      // Up to the next hole slice, in reads of at most the buffer.
      let slices = 1;
      while (slices < slicesPerRead && !holes?.has(slice + slices)) slices++;
      const wanted = Math.min(slices * sliceSize, file.length - position);
      await readFully(handle, buffer, wanted, position, file);
      whole.update(buffer.subarray(0, wanted));
      for (let at = 0; at < wanted; at += sliceSize) {
        let bytes = buffer.subarray(at, Math.min(wanted, at + sliceSize));
        if (bytes.length < sliceSize) {
          const padded = new Uint8Array(sliceSize);
          padded.set(bytes);
          bytes = padded;
        }
        checksums.push({ md5: md5(bytes), crc32: Bun.hash.crc32(bytes) >>> 0 });
      }
      position += wanted;
    }
  } finally {
    await handle.close();
  }
  return { description: describe(file, whole), checksums };
}

/** Bytes per read of a file being hashed. */
const READ_BYTES = 4 * 1024 * 1024;

async function readFully(handle: FileHandle, into: Uint8Array, wanted: number, position: number, file: PlannedFile): Promise<void> {
  let got = 0;
  while (got < wanted) {
    const { bytesRead } = await handle.read(into, got, wanted - got, position + got);
    if (bytesRead === 0) throw new Error(`${file.path} changed while read: shorter than ${file.length} bytes`);
    got += bytesRead;
  }
}

/** The file's MD5 alone (its slices hashed elsewhere), in reads of at most READ_BYTES whatever the slice size; holes as zeros. */
async function fileMd5(file: PlannedFile, sliceSize: number, holes: ReadonlySet<number> | undefined, signal?: AbortSignal): Promise<Bun.CryptoHasher> {
  const buffer = new Uint8Array(Math.min(READ_BYTES, file.length));
  const whole = new Bun.CryptoHasher("md5");
  const handle = await open(fsPath(file.path), "r");
  try {
    for (let slice = 0, position = 0; position < file.length; slice++) {
      const end = Math.min(file.length, position + sliceSize);
      if (holes?.has(slice)) {
        hashZeros(whole, end - position);
        position = end;
        continue;
      }
      while (position < end) {
        signal?.throwIfAborted();
        const wanted = Math.min(buffer.length, end - position);
        await readFully(handle, buffer, wanted, position, file);
        whole.update(buffer.subarray(0, wanted));
        position += wanted;
      }
    }
  } finally {
    await handle.close();
  }
  return whole;
}

function describe(file: PlannedFile, whole: Bun.CryptoHasher): FileDescription {
  return { fileId: file.fileId, md5: new Uint8Array(whole.digest().buffer), md5First16k: file.md5First16k, length: file.length, name: file.name };
}
