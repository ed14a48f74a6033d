import { lstatSync, unlinkSync } from "node:fs";
import { copyWithHash, type CopyRequest, type CopyResult } from "../copy/builtin-copy.ts";
import { crashPoint } from "../crash-point.ts";
import type { MountedDisk } from "../disk/mounted-disk.ts";
import type { SpaceBudget } from "../disk/space-budget.ts";
import { errnoCode, errorMessage } from "../errors.ts";
import { fsPath } from "../fs/byte-names.ts";
import type { HashAlgorithm } from "../hashing.ts";
import { batches, mapBounded } from "../pipeline/bounded.ts";
import { ByteBudget } from "../pipeline/byte-budget.ts";
import type { PlannedFile, StoredFile } from "../pipeline/types.ts";
import type { RunReport } from "../report.ts";
import { formatBytes } from "../size.ts";

/** Files per group handed to one bounded task, and the most bytes a group gathers. */
const GROUP_FILES = 32;
const GROUP_BYTES = 1024 * 1024;

export type CopyFunction = (request: CopyRequest) => Promise<CopyResult>;

export interface CopierOptions {
  readonly algorithm: HashAlgorithm;
  readonly space: SpaceBudget;
  readonly report: RunReport;
  /** A fresh temp path on the disk whose space was reserved for the copy. */
  readonly newTemp: (disk: MountedDisk) => { name: string; path: string };
  /** The built-in copier by default; dc3dd is the alternative. */
  readonly copy?: CopyFunction;
  /** Files in flight at once (default 1024: small files are latency-bound). */
  readonly concurrency?: number;
  /** Bytes of copies in flight at once (default 512 MiB; a large file counts as half of it at most). */
  readonly bytesInFlight?: number;
  readonly dryRun?: boolean;
  readonly signal?: AbortSignal;
}

/**
 * Copies new and modified files into temp files on the disk, hashing as it
 * copies. Links, symlinks and renames pass through: they carry no data.
 */
export async function* copier(items: AsyncIterable<PlannedFile>, options: CopierOptions): AsyncGenerator<StoredFile> {
  const work = async (item: PlannedFile): Promise<StoredFile | undefined> => {
    if (item.action !== "copy") return { ...item, action: item.action ?? "copy", hash: item.hash ?? "", bytesCopied: 0 };
    if (options.dryRun) {
      options.report.plan.push(`copy ${item.path} (${formatBytes(item.size)})`);
      return { ...item, action: "copy", hash: item.hash ?? "", bytesCopied: item.size };
    }
    return copyOne(item, options);
  };
  // Many small files in flight keep the copy workers busy while the main
  // thread commits a batch; the byte budget keeps large files from piling up.
  const bytesInFlight = options.bytesInFlight ?? 512 * 1024 * 1024;
  const budget = new ByteBudget(bytesInFlight);
  const gated = async (item: PlannedFile): Promise<StoredFile | undefined> => {
    if (item.action !== "copy" || options.dryRun) return work(item);
    // A large file asks for at most half the budget: two of them copy at
    // once (one per core), never more, so a spinning disk sees two streams.
    const granted = await budget.acquire(Math.min(item.size + 4096, bytesInFlight / 2));
    try {
      return await work(item);
    } finally {
      budget.release(granted);
    }
  };
  // Small files travel in groups: one bounded task per group instead of per
  // file, since a queue slot and its promises cost more than a 4 KB copy.
  const groups = batches(items, { size: GROUP_FILES, weight: (item) => (item.action === "copy" ? item.size : 0), maxWeight: GROUP_BYTES, maxWaitMs: 20 });
  const concurrency = Math.max(1, Math.ceil((options.concurrency ?? 1024) / GROUP_FILES));
  const copyGroup = (group: PlannedFile[]) => Promise.all(group.map(gated));
  for await (const stored of mapBounded(groups, copyGroup, { concurrency, signal: options.signal })) {
    for (const item of stored) if (item) yield item;
  }
}

/** Copies one file, retrying once if it changed during the copy. Reports failures; never throws for a file. */
export async function copyOne(item: PlannedFile, options: CopierOptions): Promise<StoredFile | undefined> {
  const { report, space } = options;
  const copy = options.copy ?? copyWithHash;
  let current: PlannedFile = item;
  for (let attempt = 1; attempt <= 2; attempt++) {
    const reservation = space.tryReserve(current.size);
    if (!reservation) {
      if (space.largerThanAnyDisk(current.size)) {
        // Not a full disk: no disk could ever hold it (files are never split).
        report.counts.skipped++;
        report.error(current.path, `${formatBytes(current.size)} is larger than any mounted archive disk can hold; it is not archived`);
        return undefined;
      }
      report.notStored.files++;
      report.notStored.bytes += current.size;
      report.counts.skipped++;
      report.warn(current.path, `not stored: ${formatBytes(current.size)} does not fit on the disk`);
      return undefined;
    }
    const temp = options.newTemp(reservation.disk);
    let written = false;
    try {
      const result = await copy({
        source: current.path,
        target: temp.path,
        algorithm: options.algorithm,
        mode: current.mode,
        mtimeMs: current.mtimeMs,
        expectedSize: current.size,
        signal: options.signal,
      });
      written = true;
      const after = result.sourceAfter;
      if (result.size === current.size && after.size === current.size && after.mtimeMs === current.mtimeMs) {
        crashPoint("after-copy");
        report.done(result.size);
        return { ...current, action: "copy", hash: result.hash, tempName: temp.name, bytesCopied: result.size };
      }
      unlinkQuiet(temp.path);
      written = false;
      if (attempt === 2) break;
      // It changed while we copied: take its new state and try once more.
      const stats = lstatSync(fsPath(current.path));
      if (!stats.isFile()) break;
      current = { ...current, size: stats.size, mtimeMs: stats.mtimeMs, mode: stats.mode & 0o7777, ino: stats.ino, dev: stats.dev, hash: undefined };
    } catch (error) {
      unlinkQuiet(temp.path);
      options.signal?.throwIfAborted();
      report.counts.skipped++;
      const code = errnoCode(error);
      if (code === "ENOENT") report.error(current.path, "vanished before it could be copied");
      else if (code === "ENOSPC") report.error(current.path, "the archive disk is full");
      else report.error(current.path, errorMessage(error));
      return undefined;
    } finally {
      space.release(reservation, written);
    }
  }
  report.counts.skipped++;
  report.error(current.path, "changed while being copied (twice); it will be archived by a later run");
  return undefined;
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone.
  }
}
