import { existsSync } from "node:fs";
import type { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { lastRunInCopy, type LastRun } from "../catalog/runs-table.ts";
import { BlaineError, ExitCode } from "../../errors.ts";
import { DeferredQueue } from "../catalog/deferred-actions-table.ts";
import type { MountedDisk } from "./mounted-disk.ts";

/** A mounted copy that was not in the state the host catalog last saw it in, and what it lacked. */
export interface StaleCopy {
  readonly disk: string;
  /** The directory the copy was named by. */
  readonly dir: string;
  /** Paths it lacked or held in an older version (queued to be fetched or linked). */
  readonly behind: number;
  /** Paths it held that its disk no longer has (queued to be deleted). */
  readonly extra: number;
  /** Whether the catch-up was queued (a writing open), or only noticed. */
  readonly queued: boolean;
}

/**
 * How many batches the copy's own catalog has committed: its intents' last
 * id, which only grows. Every DiskWriter commit records it in the host
 * catalog (`disk_copies.writes`), so a copy that shows another count is
 * not the state the catalog knows.
 */
export function committedBatches(catalog: ArchiveCatalog, disk: MountedDisk): number {
  return catalog.entries(disk.alias).committedBatches();
}

/**
 * Recognises a copy made by hand (`rsync -aH`, `cp -a`: it has the
 * original's disk.json) or an old image of a copy, mounted in its place:
 * its own catalog has committed another number of batches than the host
 * catalog last saw. Such a copy is then compared with what the host catalog
 * places on its disk (paths its queue still changes aside), and, for a
 * writing open, what it lacks is queued for it alone, as a twin's catch-up
 * (fetched from the sources or another copy, or linked to content it
 * holds), then what it holds that the disk no longer has, as deletions;
 * the caller applies that queue before anything else is written to it.
 *
 * A copy whose own copy of the host catalog tells of a run this catalog
 * never saw is newer than the catalog, not stale: refused, so that nothing
 * the catalog does not know is deleted from it.
 */
export function checkCopyIsCurrent(catalog: ArchiveCatalog, disk: MountedDisk, options: { readonly queue: boolean }): StaleCopy | undefined {
  const copyId = disk.label.copyId;
  const committed = committedBatches(catalog, disk);
  const known = catalog.disks.writesOf(copyId);
  if (known === undefined || known === committed) return undefined;
  if (known === null) {
    // First seen since the catalog kept the count: taken as it is.
    if (options.queue) noteCommittedBatches(catalog, disk, committed);
    return undefined;
  }
  refuseNewerThanCatalog(catalog, disk);
  const entries = catalog.entries(disk.alias);
  const behind = entries.behindHost(disk.label.diskId, copyId);
  const extra = entries.notOnHost(disk.label.diskId, copyId);
  if (!options.queue) return behind.length + extra.length > 0 ? { disk: disk.label.label, dir: disk.dir, behind: behind.length, extra: extra.length, queued: false } : undefined;
  const queue = new DeferredQueue(catalog);
  catalog.transaction(() => {
    // Copies first: a renamed file is then linked to the content it still holds under its old name, before that name goes.
    for (const record of behind) queue.queueForCopy(copyId, { op: record.kind === "symlink" ? "symlink" : "copy", path: record.path, record });
    for (const path of extra) queue.queueForCopy(copyId, { op: "delete", path });
    noteCommittedBatches(catalog, disk, committed);
  });
  if (behind.length + extra.length === 0) return undefined;
  return { disk: disk.label.label, dir: disk.dir, behind: behind.length, extra: extra.length, queued: true };
}

/** Records that the catalog knows the copy as it is now. */
export function noteCommittedBatches(catalog: ArchiveCatalog, disk: MountedDisk, committed = committedBatches(catalog, disk)): void {
  catalog.disks.noteWrites(disk.label.copyId, committed);
}

/** Refuses a copy whose own copy of the host catalog tells of a run this catalog does not have. */
function refuseNewerThanCatalog(catalog: ArchiveCatalog, disk: MountedDisk): void {
  const copyPath = disk.layout.hostCatalogCopy;
  if (!existsSync(copyPath)) return;
  let last: LastRun | undefined;
  try {
    last = lastRunInCopy(copyPath);
  } catch {
    // An unreadable spare copy tells nothing either way.
    return;
  }
  if (!last) return;
  if (catalog.runs.has(last.startedAt, last.hostname)) return;
  throw new BlaineError(
    `${disk.dir} (disk "${disk.label.label}") has been written by a run this catalog (${catalog.path}) does not know ` +
      `(started ${new Date(last.startedAt).toISOString()}${last.hostname ? ` on ${last.hostname}` : ""}): the catalog is older than the disk. ` +
      `Use the catalog that ran it, or make one from the disks with "blaine catalog rebuild"`,
    ExitCode.usage,
  );
}
