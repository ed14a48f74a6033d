import { fstatSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { sizeOf } from "../fs/device-size.ts";
import { adviseWillNeed } from "../fs/readahead.ts";
import { BlaineError, ExitCode, UsageError, errnoCode, errorMessage } from "../errors.ts";
import { MAX_INHERITANCE_DEPTH, type BlockRow, type ImageCatalog, type VersionRow } from "./catalog/image-catalog.ts";
import { hintedBlocks, readHints } from "./hints.ts";
import { allocatedBlocks, allocatedBytes, blockCount, everyBlock, hintedBlockRefs } from "./stages/block-ranges.ts";
import { BackupCounts, type BlockRef } from "./stages/types.ts";
import type { Compression } from "./store/chunk-format.ts";
import { BACKUP_SLOT_BYTES, BlockWorkers } from "./workers/block-workers.ts";
import type { ChunkStore } from "./store/chunk-store.ts";
import { versionDocText } from "./version-doc.ts";
import { settleVersionDocs } from "./version-removal.ts";

/** What a backup is asked to do (`blaine image backup SOURCE NAME …`). */
export interface ImageBackupRequest {
  readonly source: string;
  readonly name: string;
  readonly snapshot?: string;
  readonly hints?: string;
  readonly from?: string;
  readonly blockSize: number;
  readonly compression: Compression;
  readonly labels?: Record<string, string>;
  /**
   * The blocks known changed since the base, from metadata the caller
   * trusts (extents that moved, thin_delta): only these are read and no
   * sanity check re-reads others. Ignored without a base.
   */
  readonly changed?: { readonly read: ReadonlySet<number>; readonly zero: ReadonlySet<number> };
  /** The version's date (ms since the epoch; default now). */
  readonly date?: number;
  /**
   * Block workers already started (for this block size), so their threads
   * boot while the caller loads and opens the rest; the run takes them over
   * as they are and closes them. By default the run starts its own, sized
   * for its work (a small change's: no thread, see SMALL_CHANGE_POOL).
   */
  readonly workers?: BlockWorkers;
}

/** One backup in progress: everything the pipeline's stages are given. */
export interface ImageBackupRun {
  readonly catalog: ImageCatalog;
  readonly store: ChunkStore;
  readonly uid: string;
  readonly sourceName: string;
  readonly source: FileHandle;
  readonly size: number;
  readonly blockSize: number;
  readonly compression: Compression;
  readonly base: VersionRow | undefined;
  /** The base's hash per block (--from without hints: every block is compared). */
  readonly baseHashes: Map<number, string | null> | undefined;
  /** The hints file (--hints), named when the sanity check's sample finds a change outside it. */
  readonly hints: string | undefined;
  readonly counts: BackupCounts;
  /**
   * The block slots and threads the stages share (at most 96 MiB of blocks
   * and objects in memory, whatever the image; 12 blocks of 4 MiB). Started
   * as the backup opens, so the hint sanity check hashes on them too; closed
   * when it is finished or abandoned.
   */
  readonly workers: BlockWorkers;
  /** Bytes the backup will read (for its progress line; hinted blocks counted whole). */
  readonly plannedBytes: number;
  /** Hashes this backup stores or references. */
  readonly seen: Set<string>;
  /**
   * Whether the version takes every block it inherits as its own when it is
   * finished (flattenBlocks): its base's chain is already
   * MAX_INHERITANCE_DEPTH long. Until then it inherits, like any other, so
   * a removal of its base meanwhile merges into it.
   */
  readonly flatten: boolean;
  /** The blocks to read, in order. */
  refs(): AsyncGenerator<BlockRef>;
}

export interface ImageBackupResult {
  readonly uid: string;
  readonly status: "valid";
  readonly bytesRead: number;
  readonly bytesWritten: number;
  readonly bytesDeduplicated: number;
  readonly bytesSparse: number;
}

/**
 * Changed blocks (trusted metadata, or hinted and the hint sample's) up to
 * this many bytes are hashed and compressed on the backup's own thread, as
 * their reads complete: at most about a tenth of a second of work, while the
 * reads themselves run on Bun's I/O threads. A block worker's start (a
 * JavaScript context and its modules) costs more than that work saves, and a
 * core the backup wants: with one thread instead of two, a volume send of
 * 41 MiB took 20 ms less CPU and the bench's hinted incremental of 4 GiB
 * (10 blocks hinted, 10 sampled) 40 ms less; with none instead of one, the
 * hinted incremental took 355 ms of CPU instead of 423 and 0.68 s instead of
 * 0.77 (medians of 12, cold caches, load 6.5).
 */
const SMALL_CHANGE_BYTES = 64 * 1024 * 1024;

/**
 * A small change's pool: no thread (see SMALL_CHANGE_BYTES), and 6 slots
 * rather than 12. Each slot a backup fills is memory first touched (faults,
 * pages zeroed) and unmapped again as the process exits, both slow in a VM;
 * the hinted incremental above touched half as many and took 359 ms of CPU
 * instead of 446 and 0.83 s instead of 0.93 (medians of 12, load 10). Six
 * still hold 4 reads in flight and a claim batch of 4 (see claimBatch: a
 * pool must have more slots than a batch).
 */
const SMALL_CHANGE_POOL = { slots: 6, threads: 0 } as const;

/**
 * The blocks an image that grew or shrank since its base must read besides the hinted ones: its last, the base's
 * last (short in the base, whole or longer now: the base's row has the old length, and a truncate that grew the
 * image wrote nothing a hint or an extent would name), and any new.
 */
function resizedBlocks(baseSize: number, size: number, blockSize: number): number[] {
  if (baseSize === size) return [];
  // An image emptied has no last block.
  const blocks = size > 0 ? [blockCount(size, blockSize) - 1] : [];
  if (baseSize > 0 && baseSize < size) blocks.push(blockCount(baseSize, blockSize) - 1);
  for (let index = blockCount(baseSize, blockSize); index < blockCount(size, blockSize); index++) blocks.push(index);
  return blocks;
}

/** Blocks outside the hints re-read against the base: max(10, 0.1 %), as Benji does. */
export function sanityCheckCount(outside: number): number {
  return Math.min(outside, Math.max(10, Math.ceil(outside / 1000)));
}

/**
 * The hint sanity check's sample: blocks outside the hints (and not read
 * anyway) to re-read and compare with the base's, half from the start of
 * the image and half at random.
 */
function hintSample(count: number, skip: (index: number) => boolean): Set<number> {
  const outside: number[] = [];
  for (let index = 0; index < count; index++) if (!skip(index)) outside.push(index);
  const want = sanityCheckCount(outside.length);
  const sample = new Set(outside.slice(0, Math.ceil(want / 2)));
  while (sample.size < want) sample.add(outside[Math.floor(Math.random() * outside.length)]);
  return sample;
}

/**
 * Opens a backup: the source and its size, the base (valid only), the hints
 * (checked against the source's size; with a base, blocks outside them are
 * re-read in the same pass and must equal the base's, else the backup
 * fails and its version is removed), then records the new version as
 * incomplete; with a base, the base's block list starts being copied into
 * it (see BaseCopy).
 */
export async function openImageBackup(catalog: ImageCatalog, store: ChunkStore, request: ImageBackupRequest): Promise<ImageBackupRun> {
  let source: FileHandle;
  let workers = request.workers;
  try {
    source = await open(request.source, "r");
  } catch (error) {
    workers?.close();
    throw new UsageError(`${request.source}: ${errnoCode(error) === "ENOENT" ? "no such file or device" : errorMessage(error)}`);
  }
  try {
    const stats = fstatSync(source.fd);
    if (!stats.isFile() && !stats.isBlockDevice()) throw new UsageError(`${request.source}: not a file or a block device`);
    const size = sizeOf(stats);
    const blockSize = request.blockSize;
    const base = request.from ? await catalog.requireVersion(request.from) : undefined;
    if (base) {
      if (base.status !== "valid") {
        throw new BlaineError(`version ${base.uid} is ${base.status} and cannot be the base of a backup (--from): make a full backup (without --from)`, ExitCode.usage);
      }
      if (base.blockSize !== blockSize) throw new UsageError(`--from ${base.uid}: its block size is ${base.blockSize}, not ${blockSize}; give --block-size ${base.blockSize}`);
    }
    const hinted = request.hints
      ? hintedBlocks(readHints(request.hints, size), size, blockSize)
      : base && request.changed
        ? { read: new Set(request.changed.read), zero: new Set(request.changed.zero) }
        : undefined;
    // An image that grew or shrank: its last block (old and new) is read too, and never sampled (it may differ).
    if (base && hinted) for (const index of resizedBlocks(base.size, size, blockSize)) hinted.read.add(index);
    const sample =
      base && request.hints && hinted ? hintSample(blockCount(size, blockSize), (index) => hinted.read.has(index) || hinted.zero.has(index)) : new Set<number>();
    // The blocks read from a base: hinted or changed ones hashed and compressed, the sample's only hashed (sha256
    // runs about five times as fast as zstd:3 compresses), so counted at a quarter.
    const small = base !== undefined && hinted !== undefined && (hinted.read.size + sample.size / 4) * blockSize <= SMALL_CHANGE_BYTES;
    // A small change's blocks (the sample's too) asked of the source at once, read ahead while the catalog is
    // read and the first few are hashed: only a small change's, so the page cache holds no more than its bytes.
    if (small) {
      const ranges: [number, number][] = [...hinted.read, ...sample].map((index) => [index * blockSize, Math.min(blockSize, size - index * blockSize)]);
      adviseWillNeed(source.fd, ranges);
    }
    if (workers?.blockSize !== blockSize) {
      workers?.close();
      workers = new BlockWorkers(blockSize, small ? SMALL_CHANGE_POOL : { slots: BlockWorkers.slotsWithin(BACKUP_SLOT_BYTES, blockSize) });
    }
    // The blocks a backup over a base reads or knows are zeros, when hinted or trusted: the base's hashes are looked up for these alone.
    const onlyBlocks = base && hinted ? new Set([...hinted.read, ...hinted.zero, ...sample]) : undefined;
    // Every block read is compared with the base's (with hints too: a hinted block may not have changed), so the
    // base's hashes are those of the blocks read: all of them for a full read, else only the hinted or changed ones
    // and the sample (20 rows of a 1 % incremental of 4 GiB, not its 1 024; not 262 144 of a 1 TiB image). Known
    // zeros too, hinted or trusted (thin_delta's freed ranges): a block missing from this map counts as zeros in
    // the base, so a freed block over the base's data would be dropped as unchanged and keep that data.
    const baseHashes = !base
      ? undefined
      : onlyBlocks
        ? await catalog.hashesAt(base.uid, onlyBlocks)
        : await catalog.hashesByIndex(base.uid);
    // Loaded only for a backup that reads the allocated extents: an incremental reads none (two modules fewer to load).
    const extents = !base && !hinted ? (size > 0 ? (await import("../fs/sparse.ts")).dataExtents(source.fd, size) : []) : undefined;
    const uid = crypto.randomUUID();
    // The version inherits every block it does not write from its base; at the end of a chain long enough it takes
    // them as its own when it is finished, and a new chain starts (see MAX_INHERITANCE_DEPTH).
    const flatten = base !== undefined && (await catalog.inheritanceDepth(base.uid)) >= MAX_INHERITANCE_DEPTH - 1;
    await catalog.createVersion({
      uid,
      name: request.name,
      snapshot: request.snapshot ?? "",
      date: request.date ?? Date.now(),
      size,
      blockSize,
      labels: request.labels ?? {},
      baseUid: base?.uid ?? null,
      inheritsUid: base?.uid ?? null,
    });
    const counts = new BackupCounts();
    const run: ImageBackupRun = {
      catalog,
      store,
      uid,
      sourceName: request.source,
      source,
      size,
      blockSize,
      compression: request.compression,
      base,
      // With hints the base's rows stand for unhinted blocks; hinted ones are compared with the base too.
      baseHashes,
      hints: request.hints,
      counts,
      workers,
      plannedBytes: hinted ? Math.min(size, (hinted.read.size + sample.size) * blockSize) : allocatedBytes(extents, size, blockSize),
      seen: new Set(),
      flatten,
      refs: () => {
        if (hinted) return hintedBlockRefs(hinted, size, blockSize, sample);
        return base ? everyBlock(size, blockSize) : allocatedBlocks(extents, size, blockSize);
      },
    };
    return run;
  } catch (error) {
    workers?.close();
    await source.close();
    throw error;
  }
}

/**
 * Ends a backup: its metadata into the store, then the version valid in the
 * catalog. The store's document lists the version's own rows and names the
 * version it inherits the rest from (a 1 % change of a 4 GiB volume: 328
 * lines, not 32 768); its counts of sparse bytes come from the catalog's
 * resolved blocks.
 */
export async function finishImageBackup(run: ImageBackupRun): Promise<ImageBackupResult> {
  run.workers.close();
  await run.source.close();
  const { catalog, counts } = run;
  if (run.flatten) await catalog.flattenBlocks(run.uid);
  const version = await catalog.requireVersion(run.uid);
  const own = await catalog.ownBlocks(run.uid);
  // Sparse: the image's zeros, stored nowhere (holes never read, zero blocks found, zeros inherited).
  const dataBytes = await dataBytesOf(run, version, own);
  const totals = { bytesRead: counts.bytesRead, bytesWritten: counts.bytesWritten, bytesDeduplicated: counts.bytesDeduplicated, bytesSparse: run.size - dataBytes };
  // The store's copy first: a version the catalog calls valid can always be restored from the store alone.
  await run.store.putVersionDoc(run.uid, versionDocText({ ...version, ...totals, status: "valid" }, own));
  // A removal of its base since it was read merged the base into it and re-pointed it: the document is made again.
  if (await catalog.finishVersion(run.uid, "valid", totals, version.inheritsUid)) await settleVersionDocs(catalog, run.store);
  return { uid: run.uid, status: "valid", ...totals };
}

/**
 * The bytes of data the version's blocks hold. Over a base it inherits from
 * (and no smaller than it): the base's, less the base's blocks where the
 * version has rows of its own, plus those rows' (a few probes, not a pass
 * over the whole list); otherwise summed over the resolved list.
 */
async function dataBytesOf(run: ImageBackupRun, version: VersionRow, own: readonly BlockRow[]): Promise<number> {
  const { base, catalog } = run;
  // Only over the base it still inherits from as it was read (not flattened, not merged into by its removal).
  if (!base || version.inheritsUid !== base.uid || base.size > run.size) return catalog.dataBytes(run.uid);
  let bytes = base.size - base.bytesSparse;
  for (const row of (await catalog.blocksAt(base.uid, own.map((block) => block.idx))).values()) if (row.hash) bytes -= row.size;
  for (const row of own) if (row.hash) bytes += row.size;
  return bytes;
}

/** A backup that failed (not killed): its version is removed, its new chunks left to cleanup. */
export async function abandonImageBackup(run: ImageBackupRun): Promise<void> {
  run.workers.close();
  await run.source.close().catch(() => {});
  await run.catalog.removeVersion(run.uid);
}
