import type { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { DeferredQueue } from "../catalog/deferred-actions-table.ts";
import type { DiskWriter } from "../disk/disk-writer.ts";
import type { SpaceBudget } from "../disk/space-budget.ts";
import type { PlannerView } from "./planner.ts";

/** Sizes from here on are indexed in the host catalog (see FilesTable.anyOfLargeSize). */
const LARGE_SIZE_INDEXED = 1024 * 1024;

/**
 * The planner's view of a run: the host catalog, and the catalogs of the
 * disks this run writes (one DiskWriter each), which agree with those disks
 * between batches; the disk new data goes to is the space budget's.
 */
export function catalogView(catalog: ArchiveCatalog, writers: ReadonlyMap<string, DiskWriter>, space: SpaceBudget): PlannerView {
  const files = catalog.files;
  const queue = new DeferredQueue(catalog);
  // A copy that is behind (see openArchiveRun): the paths its queue still changes, as the run began.
  const waiting = new Map<string, Set<string>>();
  for (const [diskId, writer] of writers) {
    if (queue.count(writer.disk.label.copyId) > 0) waiting.set(diskId, queue.pathsOf(writer.disk.label.copyId));
  }
  const writer = (diskId: string) => writers.get(diskId)!;
  return {
    targetDisk: () => space.current.label.diskId,
    writtenNow: (diskId) => writers.has(diskId),
    waitingPaths: (diskId) => waiting.get(diskId),
    locate: (path) => files.diskAndHashOf(path) ?? null,
    holdersOnDisk: (diskId, content) => writer(diskId).holdersOfOne(content),
    holdersOnDiskOfEach: (diskId, contents) => writer(diskId).holdersOfEach(contents),
    holdersInArchive: (content) => files.holdersOf(content),
    holdersInArchiveOfEach: (contents) => files.holdersOfEach(contents),
    symlinkNamesOn: (diskId, record) => writer(diskId).symlinkNamesOf(record),
    mayHoldSize: (size) => (size >= LARGE_SIZE_INDEXED ? files.anyOfLargeSize(size) : files.any()),
  };
}
