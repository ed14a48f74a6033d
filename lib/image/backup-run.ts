import { fstatSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { sizeOf } from "../fs/device-size.ts";
import { adviseWillNeed } from "../fs/readahead.ts";
import { BlaineError, ExitCode, UsageError, errnoCode, errorMessage } from "../errors.ts";
import { BASE_COPY_HERE_ROWS_SMALL_CHANGE, BaseCopy } from "./base-copy.ts";
import type { BlockRow, ImageCatalog, VersionRow } from "./catalog/image-catalog.ts";
import { hintedBlocks, readHints } from "./hints.ts";
import { allocatedBlocks, allocatedBytes, blockCount, everyBlock, hintedBlockRefs } from "./stages/block-ranges.ts";
import { BackupCounts, type BlockRef } from "./stages/types.ts";
import type { Compression } from "./store/chunk-format.ts";
import { BACKUP_SLOT_BYTES, BlockWorkers } from "./workers/block-workers.ts";
import type { ChunkStore } from "./store/chunk-store.ts";
import { allLinesValid, blockLine, docLinesOf, lineCount, lineDataBytes, spliceLines, versionDocOfParts, versionDocText } from "./version-doc.ts";

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
  /** The base's block rows being copied into the version while the pipeline runs (undefined without a base). */
  readonly baseCopy: BaseCopy | undefined;
  /**
   * The only blocks this backup reads (hinted or trusted changes, and the
   * sample), when it has a base: every other row of the version is the
   * base's. Undefined when every block is read.
   */
  readonly onlyBlocks: ReadonlySet<number> | undefined;
  /**
   * The base's document in the store, read while the blocks are (with
   * onlyBlocks: the version's is made over it); undefined when it cannot
   * be read or is not wanted.
   */
  readonly baseDoc: Promise<Uint8Array | undefined> | undefined;
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
    // The blocks a backup over a base reads or knows are zeros, when hinted or trusted: the base's hashes looked up
    // and the version's document made over the base's for these alone (see ImageBackupRun.onlyBlocks).
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
    await catalog.createVersion({
      uid,
      name: request.name,
      snapshot: request.snapshot ?? "",
      date: request.date ?? Date.now(),
      size,
      blockSize,
      labels: request.labels ?? {},
      baseUid: base?.uid ?? null,
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
      baseCopy: base ? new BaseCopy(catalog, uid, base.uid, blockCount(size, blockSize), small ? { hereRows: BASE_COPY_HERE_ROWS_SMALL_CHANGE } : {}) : undefined,
      onlyBlocks,
      baseDoc: base && hinted ? store.getVersionDocBytes(base.uid).catch(() => undefined) : undefined,
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

/** Ends a backup: its metadata into the store, then the version valid in the catalog. */
export async function finishImageBackup(run: ImageBackupRun): Promise<ImageBackupResult> {
  run.workers.close();
  await run.source.close();
  // Every row of the base the backup did not write, before any row is read back.
  await run.baseCopy?.done;
  const { catalog, counts } = run;
  if (run.base && run.base.size > run.size) await catalog.truncateBlocks(run.uid, blockCount(run.size, run.blockSize));
  const version = await catalog.requireVersion(run.uid);
  const doc = (await docOverBase(run, version)) ?? (await docFromCatalog(run, version));
  // Sparse: the image's zeros, stored nowhere (holes never read, zero blocks found, zeros inherited).
  const totals = { bytesRead: counts.bytesRead, bytesWritten: counts.bytesWritten, bytesDeduplicated: counts.bytesDeduplicated, bytesSparse: run.size - doc.dataBytes };
  // The store's copy first: a version the catalog calls valid can always be restored from the store alone.
  await run.store.putVersionDoc(run.uid, doc.doc({ ...version, ...totals, status: "valid" }));
  await catalog.finishVersion(run.uid, "valid", totals);
  return { uid: run.uid, status: "valid", ...totals };
}

/** A finished version's document (given its row with the final counts) and the bytes its blocks hold. */
interface FinishedDoc {
  readonly dataBytes: number;
  doc(version: VersionRow): string | Uint8Array;
}

/** The version's document from its rows in the catalog, all of them read back. */
async function docFromCatalog(run: ImageBackupRun, version: VersionRow): Promise<FinishedDoc> {
  const blocks: BlockRow[] = [];
  let dataBytes = 0;
  for await (const block of run.catalog.allBlocks(version.uid)) {
    blocks.push(block);
    if (block.hash) dataBytes += block.size;
  }
  return { dataBytes, doc: (finished) => versionDocText(finished, blocks) };
}

/**
 * The version's document made over its base's (the store's copy), when the
 * backup read only some blocks (a volume send's changed chunks, hints):
 * every other row is the base's, so the document is the base's lines with
 * the version's rows at the blocks read in their place (from the catalog:
 * the backup's own, or the base's it left). Reading every row back was most
 * of a small incremental's finish (32 768 rows for a 1 % change of a 4 GiB
 * volume). The base's document is read while the blocks are, and spliced
 * as bytes (see spliceLines): its lines are never split, joined or
 * re-encoded.
 *
 * The base's copy holds its rows as they were when it was finished; since
 * then only valid flags can have changed, and a scrub that finds a chunk
 * bad makes every valid version holding it invalid. So this is used only
 * when every line of the base's copy is valid and the base is still valid
 * (its rows, and the version's copies of them, all valid), the rows at the
 * blocks read are valid, and the lines are as many as the version's rows in
 * the catalog; otherwise (or with no such copy, or an image that shrank)
 * the rows are read back.
 */
async function docOverBase(run: ImageBackupRun, version: VersionRow): Promise<FinishedDoc | undefined> {
  const { base, onlyBlocks, catalog } = run;
  // An image that shrank since its base has lines past its end in the base's document: made from the catalog.
  if (!base || !onlyBlocks || !run.baseDoc || base.size > run.size || (await catalog.version(base.uid))?.status !== "valid") return undefined;
  const baseBytes = await run.baseDoc;
  const baseDoc = baseBytes === undefined ? undefined : docLinesOf(baseBytes);
  if (!baseDoc || !allLinesValid(baseDoc)) return undefined;
  const read = [...onlyBlocks].sort((a, b) => a - b);
  const rows = await catalog.blocksAt(version.uid, read);
  if ([...rows.values()].some((row) => !row.valid)) return undefined;
  const { parts, dropped, added } = spliceLines(baseDoc, read, (index) => {
    const row = rows.get(index);
    return row && blockLine(row);
  });
  if (lineCount(baseDoc) - dropped.length + added !== (await catalog.blockRowCount(version.uid))) return undefined;
  // The bytes of data: the base's (its size less its sparse bytes), less its lines at the blocks read, plus the version's rows there.
  let dataBytes = base.size - base.bytesSparse;
  for (const line of dropped) dataBytes -= lineDataBytes(line);
  for (const found of rows.values()) if (found.hash) dataBytes += found.size;
  return { dataBytes, doc: (finished) => versionDocOfParts(finished, parts) };
}

/** A backup that failed (not killed): its version is removed, its new chunks left to cleanup. */
export async function abandonImageBackup(run: ImageBackupRun): Promise<void> {
  await run.baseCopy?.stop();
  run.workers.close();
  await run.source.close().catch(() => {});
  await run.catalog.removeVersion(run.uid);
}
