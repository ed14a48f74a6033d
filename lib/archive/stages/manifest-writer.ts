import type { FileRecord } from "../catalog/records.ts";
import type { RunLinks } from "../catalog/run-links.ts";
import type { ChangeWriter, DiskChange } from "../disk/disk-writer.ts";
import { batches } from "../../pipeline/bounded.ts";
import { toFileRecord, type PlannedFile, type StoredFile } from "./types.ts";
import type { RunReport } from "../run/report.ts";
import { OutOfSpaceError } from "../../errors.ts";
import { reportNoRoom } from "./copier.ts";

export interface ManifestWriterOptions {
  readonly writer: ChangeWriter;
  readonly report: RunReport;
  readonly runLinks?: RunLinks;
  /** Copies a file whose planned link or rename could not be made after all. */
  readonly copyAgain: (item: PlannedFile) => Promise<StoredFile | undefined>;
  /** A file that could not be stored: its old name must not be taken for deleted. */
  readonly onNotStored?: (item: PlannedFile) => void;
  readonly dryRun?: boolean;
  /** Files per transaction; larger batches mean fewer syncs, smaller ones less redone after a crash. */
  readonly batchSize?: number;
  readonly signal?: AbortSignal;
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
          count(item, report);
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
  options.writer.discard?.(batch.map(toChange));
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
  const { writer, report } = options;
  const stored: StoredFile[] = [];
  let pending: StoredFile[] = batch;
  // Two rounds: the second commits copies made for links/renames that fell through.
  for (let round = 0; round < 2 && pending.length > 0; round++) {
    const outcomes = await writer.commit(pending.map(toChange));
    const again: StoredFile[] = [];
    for (let i = 0; i < pending.length; i++) {
      const item = pending[i];
      const outcome = outcomes[i];
      // Archived symlinks the sources replaced by directories, removed to make way for this file.
      report.counts.deleted += outcome.replacedSymlinks ?? 0;
      if (outcome.ok) {
        const done: StoredFile = outcome.storedAsLink && item.action === "copy" ? { ...item, action: "link", bytesCopied: 0 } : item;
        count(done, report);
        if (done.action === "link" && done.change !== "renamed") options.runLinks?.add(done.hash, done.size, done.change);
        stored.push(done);
      } else if (outcome.noRoom) {
        report.outOfSpace ??= outcome.error;
        notRecorded(item, options);
      } else if (outcome.needsCopy && round === 0) {
        const change = item.change === "renamed" ? "new" : item.change;
        // A symlink has no data to copy (opening it fails): it is made again, or linked to its other names.
        const copied = item.kind === "symlink" ? { ...item, action: "symlink" as const, change } : await options.copyAgain({ ...item, action: "copy", change });
        if (copied) again.push(copied);
      } else {
        options.onNotStored?.(item);
        report.counts.skipped++;
        report.error(item.path, outcome.error ?? "could not be stored");
      }
    }
    pending = again;
  }
  return stored;
}

function toChange(item: StoredFile): DiskChange {
  const record: FileRecord = toFileRecord(item, item.hash);
  switch (item.action) {
    case "copy":
      return { op: "place", record, tempName: item.tempName! };
    case "link":
      return { op: "link", record };
    case "symlink":
      return { op: "symlink", record };
    case "rename":
      return { op: "rename", fromPath: item.renameFrom!, record };
  }
}

function count(item: StoredFile, report: RunReport): void {
  report.counts[item.change]++;
  if (item.action === "link") report.counts.deduplicated++;
  report.counts.bytesCopied += item.action === "copy" ? item.bytesCopied : 0;
}
