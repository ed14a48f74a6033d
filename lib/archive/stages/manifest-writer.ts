import type { RunLinks } from "../catalog/run-links.ts";
import type { ChangeWriter } from "../run/archive-writer.ts";
import type { FileChange, Planner } from "../run/planner.ts";
import { batches } from "../../pipeline/bounded.ts";
import { toFileRecord, type PlannedFile, type StoredFile } from "./types.ts";
import type { RunReport } from "../run/report.ts";
import { OutOfSpaceError } from "../../errors.ts";
import { reportNoRoom } from "./copier.ts";

export interface ManifestWriterOptions {
  /** Places each batch's files (ArchiveRun.planner): which disk, copy, hardlink, rename or symlink, now or deferred. */
  readonly planner: Pick<Planner, "placeBatch" | "replan">;
  /** Carries the placements out (ArchiveRun.writer). */
  readonly writer: ChangeWriter;
  readonly report: RunReport;
  /**
   * What the deletions need to tell renames by content. A new path stored
   * as a hardlink (in a dry run also a planned copy) is counted only at the
   * end of the run, once the deletions have said whether a vanished path
   * had its content (a rename) or not (a new file): see countLinkedNew.
   */
  readonly runLinks?: RunLinks;
  /**
   * The way back for files whose placement could not be carried out (a
   * link's holder or a rename's source gone): planned again as copies, they
   * go through these stages (the run's copier and parity stage) and are
   * committed with the batch. Unset: such files are reported as not stored.
   */
  readonly again?: (items: AsyncIterable<PlannedFile>) => AsyncIterable<StoredFile>;
  /** A file that could not be stored: its old name must not be taken for deleted. */
  readonly onNotStored?: (item: PlannedFile) => void;
  readonly dryRun?: boolean;
  /** Files per transaction; larger batches mean fewer syncs, smaller ones less redone after a crash. */
  readonly batchSize?: number;
  readonly signal?: AbortSignal;
  /** Called as the stage begins: the run learns that what it met is stored (deletions depend on it). */
  readonly onStart?: () => void;
}

/**
 * Places stored files in the data tree and records them in the host and disk
 * catalogs, in batches (see DiskWriter for the crash-safety protocol).
 * Yields each file once it is durable on the disk and in both catalogs.
 *
 * While one batch is being committed (its temps placed by the copy
 * workers), the next is gathered: the stages upstream keep walking and
 * copying instead of waiting. Commits themselves run one after another.
 */
export async function* writeManifest(items: AsyncIterable<StoredFile>, options: ManifestWriterOptions): AsyncGenerator<StoredFile> {
  const { report } = options;
  options.onStart?.();
  const batchOptions = {
    size: options.batchSize ?? 2000,
    weight: (item: StoredFile) => item.bytesCopied,
    maxWeight: 512 * 1024 * 1024,
    maxWaitMs: 2000,
  };
  let committing: Promise<StoredFile[]> | undefined;
  try {
    for await (const batch of batches(items, batchOptions)) {
      options.signal?.throwIfAborted();
      if (options.dryRun) {
        for (const item of batch) {
          if (item.action !== "copy") report.plan.push(`${item.action} ${item.path}${item.renameFrom ? ` (from ${item.renameFrom})` : ""}`);
          // What the deletions need to count renames as the real run will (see RunLinks).
          if (item.renameFrom) options.runLinks?.plannedRenameFrom(item.renameFrom);
          else if (item.action === "link" && item.change !== "renamed") options.runLinks?.add(item.hash, item.size, item.change);
          else if (item.action === "copy" && item.change === "new") options.runLinks?.plannedCopy(item.path, item.size);
          if (!countedAtEnd(item, options)) count(item, report);
          yield item;
        }
        continue;
      }
      const previous = committing;
      committing = (previous ?? Promise.resolve([])).then(() => commitOrDrop(batch, options));
      // Handled when awaited below; this only keeps a failure from counting as unhandled meanwhile.
      committing.catch(() => {});
      if (previous) yield* await previous;
    }
    if (committing) {
      const last = committing;
      committing = undefined;
      yield* await last;
    }
  } finally {
    // Stopped early (an error, or the consumer is done): the catalogs settle before anyone closes them.
    await committing?.catch(() => {});
  }
}

/**
 * Commits one batch, unless the run has stopped for lack of space: then, or
 * when this commit finds a disk's catalog full (OutOfSpaceError: its changes
 * are made and recorded by the next command), the batch is dropped, counted
 * as not stored.
 */
async function commitOrDrop(batch: StoredFile[], options: ManifestWriterOptions): Promise<StoredFile[]> {
  if (!options.report.outOfSpace) {
    try {
      return await commitBatch(batch, options);
    } catch (error) {
      if (!(error instanceof OutOfSpaceError)) throw error;
      options.report.outOfSpace = error.message;
      for (const item of batch) notRecorded(item, options);
      return [];
    }
  }
  options.writer.discard?.(batch.flatMap((item) => (item.tempName && item.disk ? [{ diskId: item.disk.label.diskId, tempName: item.tempName }] : [])));
  for (const item of batch) notRecorded(item, options);
  return [];
}

/** A change the run could not record for lack of space: new data counts as not stored (exit 3). */
function notRecorded(item: StoredFile, options: ManifestWriterOptions): void {
  const { report } = options;
  if (item.action === "copy") reportNoRoom(item, options);
  else {
    report.counts.skipped++;
    report.warn(item.path, `not recorded: the archive disk is full (${item.action}); the next run does it`);
  }
}

/** Commits one batch; returns the files stored, in order. Failures are counted and reported. */
async function commitBatch(batch: StoredFile[], options: ManifestWriterOptions): Promise<StoredFile[]> {
  const { writer, report, planner } = options;
  const stored: StoredFile[] = [];
  let pending: StoredFile[] = batch;
  // Two rounds: the second commits the files planned again and copied.
  for (let round = 0; round < 2 && pending.length > 0; round++) {
    const placements = planner.placeBatch(pending.map(toFileChange));
    const outcomes = await writer.execute(placements);
    const again: PlannedFile[] = [];
    for (let i = 0; i < pending.length; i++) {
      const item = pending[i];
      const placement = placements[i];
      const outcome = outcomes[i];
      // Archived symlinks the sources replaced by directories, removed to make way for this file.
      report.counts.deleted += outcome.replacedSymlinks ?? 0;
      if (outcome.ok && placement.when !== "replan") {
        const action = placement.storedAs as StoredFile["action"];
        const done: StoredFile = action === item.action ? item : { ...item, action, bytesCopied: action === "copy" ? item.bytesCopied : 0 };
        if (done.action === "link" && done.change !== "renamed") options.runLinks?.add(done.hash, done.size, done.change);
        if (!countedAtEnd(done, options)) count(done, report);
        stored.push(done);
      } else if (outcome.noRoom) {
        report.outOfSpace ??= outcome.error;
        notRecorded(item, options);
      } else if (outcome.replan && round === 0 && options.again) {
        again.push(planner.replan(item));
      } else {
        options.onNotStored?.(item);
        report.counts.skipped++;
        report.error(item.path, outcome.error ?? "could not be stored");
      }
    }
    pending = again.length > 0 && options.again ? await collect(options.again(fromArray(again))) : [];
  }
  return stored;
}

async function* fromArray<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

function toFileChange(item: StoredFile): FileChange {
  const record = toFileRecord(item, item.hash);
  switch (item.action) {
    case "copy":
      return { op: "copied", record, tempName: item.tempName!, diskId: item.disk!.label.diskId };
    case "link":
      return { op: "link", record };
    case "symlink":
      return { op: "symlink", record };
    case "rename":
      return { op: "rename", fromPath: item.renameFrom!, record };
  }
}

/** A new path whose count waits for the deletions (see ManifestWriterOptions.runLinks). */
function countedAtEnd(item: StoredFile, options: ManifestWriterOptions): boolean {
  if (!options.runLinks || item.change !== "new") return false;
  return item.action === "link" || (options.dryRun === true && item.action === "copy" && !item.renameFrom);
}

function count(item: StoredFile, report: RunReport): void {
  report.counts[item.change]++;
  if (item.action === "link") report.counts.deduplicated++;
  report.counts.bytesCopied += item.action === "copy" ? item.bytesCopied : 0;
}
