import type { FileRecord } from "../catalog/records.ts";
import type { RunLinks } from "../catalog/run-links.ts";
import type { ChangeWriter, DiskChange } from "../disk/disk-writer.ts";
import { batches } from "../pipeline/bounded.ts";
import { toFileRecord, type PlannedFile, type StoredFile } from "../pipeline/types.ts";
import type { RunReport } from "../report.ts";

export interface ManifestWriterOptions {
  readonly writer: ChangeWriter;
  readonly report: RunReport;
  readonly runLinks?: RunLinks;
  /** Copies a file whose planned link or rename could not be made after all. */
  readonly copyAgain: (item: PlannedFile) => Promise<StoredFile | undefined>;
  readonly dryRun?: boolean;
  /** Files per transaction; larger batches mean fewer syncs, smaller ones less redone after a crash. */
  readonly batchSize?: number;
  readonly signal?: AbortSignal;
}

/**
 * Places stored files in the data tree and records them in the host and disk
 * catalogs, in batches (see DiskWriter for the crash-safety protocol).
 * Yields each file once it is durable on the disk and in both catalogs.
 */
export async function* writeManifest(items: AsyncIterable<StoredFile>, options: ManifestWriterOptions): AsyncGenerator<StoredFile> {
  const { writer, report } = options;
  const batchOptions = {
    size: options.batchSize ?? 2000,
    weight: (item: StoredFile) => item.bytesCopied,
    maxWeight: 512 * 1024 * 1024,
    maxWaitMs: 2000,
  };
  for await (const batch of batches(items, batchOptions)) {
    options.signal?.throwIfAborted();
    if (options.dryRun) {
      for (const item of batch) {
        if (item.action !== "copy") report.plan.push(`${item.action} ${item.path}${item.renameFrom ? ` (from ${item.renameFrom})` : ""}`);
        count(item, report);
        yield item;
      }
      continue;
    }
    let pending: StoredFile[] = batch;
    // Two rounds: the second commits copies made for links/renames that fell through.
    for (let round = 0; round < 2 && pending.length > 0; round++) {
      const outcomes = await writer.commit(pending.map(toChange));
      const again: StoredFile[] = [];
      for (let i = 0; i < pending.length; i++) {
        const item = pending[i];
        const outcome = outcomes[i];
        if (outcome.ok) {
          const stored: StoredFile = outcome.storedAsLink && item.action === "copy" ? { ...item, action: "link", bytesCopied: 0 } : item;
          count(stored, report);
          if (stored.action === "link" && stored.change !== "renamed") options.runLinks?.add(stored.hash, stored.size, stored.change);
          yield stored;
        } else if (outcome.needsCopy && round === 0) {
          const copied = await options.copyAgain({ ...item, action: "copy", change: item.change === "renamed" ? "new" : item.change });
          if (copied) again.push(copied);
        } else {
          report.counts.skipped++;
          report.error(item.path, outcome.error ?? "could not be stored");
        }
      }
      pending = again;
    }
  }
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
