import type { UnseenFile } from "../catalog/files-table.ts";
import { hashAlgorithmOf, hashFile } from "../../hashing.ts";
import type { PlacementOutcome } from "./archive-writer.ts";
import type { FileChange } from "./planner.ts";
import { OutOfSpaceError } from "../../errors.ts";
import type { ArchiveRun } from "./run-context.ts";

/** The default limit: 10 % of the archived files, or 1000, whichever is smaller. */
export function deletionLimit(run: ArchiveRun, archivedFiles: number): number {
  const setting = run.settings.maxDelete;
  if (setting && "count" in setting) return setting.count;
  const percent = setting?.percent ?? 10;
  const limit = Math.ceil((archivedFiles * percent) / 100);
  return setting ? limit : Math.min(limit, 1000);
}

/**
 * The new paths whose counting waited for the deletions (see
 * ManifestWriterOptions.runLinks): those no vanished path claimed are new
 * files, hardlinks (or, in a dry run, copies). With the renames the
 * deletions counted, the counts are final.
 */
export function countLinkedNew(run: ArchiveRun): void {
  const { counts } = run.report;
  const linked = run.runLinks.unclaimedNew();
  counts.new += linked;
  counts.deduplicated += linked;
  if (!run.settings.dryRun) return;
  const planned = run.runLinks.unclaimedPlannedCopies();
  counts.new += planned.files;
  counts.bytesCopied += planned.bytes;
}

/**
 * Removes from the disk and the catalogs the archived files this run did not
 * see. A path whose content this run stored again under another name was a
 * rename by content, and is counted as one. A path whose content may be
 * that of a file this run could not store (a move onto a full disk, a read
 * failure at the new name) stays: nothing archived leaves the archive
 * because a copy could not be made. When more would go than the limit
 * allows (typically: a pool branch is not mounted), nothing is deleted and
 * the run ends with a safety stop.
 */
export async function applyDeletions(run: ArchiveRun): Promise<void> {
  const { report, catalog, writer } = run;
  // Files on every disk, mounted or not: a deletion on an offline disk is deferred (see ArchiveWriter).
  const diskIds = [...catalog.disks.labels().keys()];
  const dryRun = run.settings.dryRun;
  // A dry run renamed nothing: the old names of its renames are still archived, and are not deletions.
  const vanished = [...run.seen.unseen(run.sources, diskIds)].filter((file) => !dryRun || !run.runLinks.renamedAwayInDryRun(file.path));
  if (vanished.length === 0) return;
  if (report.outOfSpace) {
    // The run stopped before it recorded everything it saw: what it did not record is not a deletion.
    report.warn(run.sources[0], `${vanished.length} deletion(s) not applied: the run stopped for lack of space; the next run applies them`);
    return;
  }
  if (run.settings.keepDeleted) {
    report.warn(run.sources[0], `${vanished.length} deleted files kept in the archive (--keep-deleted)`);
    return;
  }
  const renamedByContent: UnseenFile[] = [];
  /** A dry run's planned copies that hold a vanished path's content: the real run stores them as links, renames by content. */
  let renamedByPlannedCopy = 0;
  const gone: UnseenFile[] = [];
  const kept = new Set<UnseenFile>();
  for (const file of vanished) {
    if (run.runLinks.claimNew(file.hash, file.size)) renamedByContent.push(file);
    else if (dryRun && claimPlannedCopy(run, file)) renamedByPlannedCopy++;
    else if (run.runLinks.mayBeUnstored(file.hash, file.size)) {
      kept.add(file);
      report.warn(file.path, "kept in the archive: a file this run could not store may be this one under a new name; it goes once that file is archived");
    } else gone.push(file);
  }
  const deletions = gone.length;
  const limit = deletionLimit(run, catalog.files.count());
  if (deletions > limit) {
    run.runLinks.releaseClaims();
    report.safetyStop =
      `safety stop: this run would delete ${deletions} archived files, more than the limit of ${limit} ` +
      `(--max-delete). Nothing was deleted. Is a source or pool branch not mounted? ` +
      `If the deletions are real, run again with --max-delete ${deletions}.`;
    return;
  }
  // Their new names were not counted yet (see countLinkedNew): they are renames.
  report.counts.renamed += renamedByContent.length + renamedByPlannedCopy;
  if (dryRun) {
    for (const file of gone) report.plan.push(`delete ${file.path}`);
    report.counts.deleted += deletions;
    return;
  }
  const changes: Extract<FileChange, { op: "delete" }>[] = vanished.filter((file) => !kept.has(file)).map((file) => ({ op: "delete", path: file.path }));
  // Counted as they are done (the old names of renames by content are renames): not what a commit had no room for, nor what failed.
  const deleted = new Set(gone.map((file) => file.path));
  for (let start = 0; start < changes.length && !report.outOfSpace; start += 1000) {
    run.signal.throwIfAborted();
    const slice = changes.slice(start, start + 1000);
    let outcomes: PlacementOutcome[];
    try {
      outcomes = await writer.execute(run.planner.placeBatch(slice));
    } catch (error) {
      // Made on the disk, recorded by the next command (see DiskWriter.commit).
      if (!(error instanceof OutOfSpaceError)) throw error;
      report.outOfSpace = error.message;
      break;
    }
    outcomes.forEach((outcome, i) => {
      const { path } = slice[i];
      if (outcome.ok) {
        if (deleted.has(path)) report.counts.deleted++;
      } else if (outcome.noRoom) report.outOfSpace ??= outcome.error;
      else report.error(path, outcome.error ?? "could not be deleted");
    });
  }
}

/** Whether a dry run's planned copy of a new path holds `file`'s content (read and hashed now); if so it is taken. */
function claimPlannedCopy(run: ArchiveRun, file: UnseenFile): boolean {
  for (const path of run.runLinks.plannedCopiesOfSize(file.size)) {
    try {
      if (hashFile(path, hashAlgorithmOf(file.hash)).hash !== file.hash) continue;
    } catch {
      continue;
    }
    run.runLinks.claimPlannedCopy(path);
    // Stored as a hardlink by the real run: nothing to copy.
    const { plan } = run.report;
    const line = plan.findIndex((planned) => planned.startsWith(`copy ${path} (`));
    if (line >= 0) plan[line] = `rename ${path} (from ${file.path}, found by content)`;
    return true;
  }
  return false;
}
