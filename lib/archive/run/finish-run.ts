import { chmodSync, copyFileSync, existsSync, renameSync, rmSync } from "node:fs";
import type { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { DeferredQueue } from "../catalog/deferred-actions-table.ts";
import { applyDeferred, dataSourcesOf, type ApplyDeferredResult } from "../disk/apply-deferred.ts";
import type { MountedDisk } from "../disk/mounted-disk.ts";
import { ExitCode, errorMessage, OutOfSpaceError, type ExitCode as ExitCodeValue } from "../../errors.ts";
import { recoverDisk } from "../disk/disk-writer.ts";
import { fsyncDirectory, syncFileSystem } from "../../fs/atomic.ts";
import type { RunCounts, RunError } from "./report.ts";
import type { ArchiveRun } from "./run-context.ts";

/** What `blaine run --json` prints. */
export interface RunResult extends RunCounts {
  readonly exitCode: ExitCodeValue;
  readonly dryRun: boolean;
  /** The disk new data went to last. */
  readonly disk: string;
  /** Disks that filled up during the run (marked full; the run went on with the next one). */
  readonly filledUp: readonly string[];
  /** Deferred actions: queued by this run for disks or copies that are not mounted, applied to mounted ones, still queued in all. */
  readonly deferred: { readonly queued: number; readonly applied: number; readonly remaining: number };
  readonly errors: readonly RunError[];
  readonly warnings: readonly RunError[];
  readonly notStored: { readonly files: number; readonly bytes: number };
  readonly bytesAvailable: number;
  readonly safetyStop: string | null;
  /** Why the run stopped recording: a disk's catalog had no room left (see RunReport.outOfSpace). */
  readonly outOfSpace: string | null;
  readonly recovered: number;
  readonly durationMs: number;
  readonly plan?: readonly string[];
}

/** `deferred`: each mounted copy's last attempt at its queue (at the end of the run, else when it was opened). */
export function exitCodeOf(run: ArchiveRun, deferred: readonly ApplyDeferredResult[] = run.deferredAtOpen): ExitCodeValue {
  const { report } = run;
  if (report.safetyStop) return ExitCode.usage;
  if (report.notStored.files > 0 || report.outOfSpace) return ExitCode.incomplete;
  if (report.errors.length > 0) return ExitCode.failure;
  // A twin that could not fully catch up needs its other copy mounted.
  if (deferred.some((result) => result.blocked.length > 0)) return ExitCode.incomplete;
  return ExitCode.ok;
}

/**
 * Ends a run: records it, and leaves a copy of the host catalog on the disk
 * (written atomically) so the disk alone can tell what the archive held.
 */
export async function finishRun(run: ArchiveRun): Promise<RunResult> {
  const { report, catalog } = run;
  let applied = run.deferredAtOpen.reduce((sum, result) => sum + result.applied, 0);
  let last = run.deferredAtOpen;
  // A commit that found its disk full left its changes made but unrecorded: recorded now if the room has come back.
  const settledLate = report.outOfSpace && !run.settings.dryRun ? settleWhatFitsNow(run) : 0;
  if (!run.settings.dryRun && !report.outOfSpace) {
    // What this run queued for mounted disks it did not write directly (a
    // full disk's renames, the other mounted copy of a twin) is applied now.
    // A copy whose queue could not be finished at open is tried again too:
    // the run may have just archived what it was waiting for (a file that
    // moved in the sources), and what is still left is told once, as it is now.
    const atEnd = await applyToMounted(catalog, run.disks, run.signal);
    applied += atEnd.reduce((sum, result) => sum + result.applied, 0);
    const triedAgain = new Set(atEnd.map((result) => result.root));
    last = [...run.deferredAtOpen.filter((result) => !triedAgain.has(result.root)), ...atEnd];
  }
  reportDeferred(run, last);
  const exitCode = exitCodeOf(run, last);
  const result: RunResult = {
    ...report.counts,
    exitCode,
    dryRun: run.settings.dryRun,
    disk: run.disk.label.label,
    filledUp: run.filledUp.map((disk) => disk.label.label),
    deferred: {
      queued: run.writer.queuedSinceStart(),
      applied,
      remaining: new DeferredQueue(catalog).countAll(),
    },
    errors: report.errors,
    warnings: report.warnings,
    notStored: report.notStored,
    bytesAvailable: run.space.available(),
    safetyStop: report.safetyStop ?? null,
    outOfSpace: report.outOfSpace ?? null,
    recovered: run.recovered + settledLate,
    durationMs: Date.now() - report.startedAt,
    ...(run.settings.dryRun ? { plan: report.plan } : {}),
  };
  if (run.settings.dryRun) return result;
  const { errors: _errors, warnings: _warnings, plan: _plan, ...summary } = result;
  catalog.runs.finish(run.runId ?? null, { finishedAt: Date.now(), exitCode, summary: JSON.stringify({ ...summary, errorCount: report.errors.length }) });
  // Nothing changed: the copy on the disk already tells what the archive holds.
  const changed = report.counts.new + report.counts.modified + report.counts.renamed + report.counts.deleted + applied > 0;
  for (const disk of run.disks) {
    if (!changed && run.recovered === 0 && existsSync(disk.layout.hostCatalogCopy)) continue;
    try {
      copyHostCatalogToDisk(catalog, disk);
    } catch (error) {
      // The run's work is done and recorded; only the disk's spare copy of the catalog is stale.
      rmSync(`${disk.layout.hostCatalogCopy}.tmp`, { force: true });
      report.warn(disk.dir, `could not leave a copy of the host catalog on ${disk.shownAs}: ${errorMessage(error)}; the copy there is from an earlier run`);
    }
  }
  return result;
}

/** Records what a commit left in its intents, for each disk that has any, where the disk has room for it now; how many changes. */
function settleWhatFitsNow(run: ArchiveRun): number {
  let settled = 0;
  for (const disk of run.disks) {
    try {
      settled += recoverDisk(run.catalog, disk);
    } catch (error) {
      if (!(error instanceof OutOfSpaceError)) throw error;
    }
  }
  return settled;
}

async function applyToMounted(catalog: ArchiveCatalog, disks: readonly MountedDisk[], signal: AbortSignal): Promise<ApplyDeferredResult[]> {
  const results: ApplyDeferredResult[] = [];
  for (const disk of disks) {
    const result = await applyDeferred(catalog, disk, { ...dataSourcesOf(disks, disk), signal });
    if (result.applied > 0 || result.remaining > 0) results.push(result);
  }
  return results;
}

/** Deferred actions that could not be applied are the run's errors (stopped) or warnings (a twin not caught up). */
function reportDeferred(run: ArchiveRun, results: readonly ApplyDeferredResult[]): void {
  for (const result of results) {
    if (result.stopped) run.report.error(result.stopped.path, `deferred ${result.stopped.op} on ${result.copy} could not be applied: ${result.stopped.message}`);
    for (const item of result.blocked) run.report.warn(item.path, `${result.copy} not caught up (${item.op}): ${item.message}`);
  }
}

/**
 * Leaves a copy of the host catalog on a disk (written atomically), so the
 * disk alone can tell what the archive held: `blaine catalog rebuild` starts from it.
 */
export function copyHostCatalogToDisk(catalog: ArchiveCatalog, disk: MountedDisk): void {
  const target = disk.layout.hostCatalogCopy;
  const temp = `${target}.tmp`;
  rmSync(temp, { force: true });
  if (catalog.holdsWriterLock && !catalog.inTransaction) {
    // Between transactions of the only writer (journal mode DELETE, synchronous FULL),
    // the file itself is the consistent catalog: copied as it is, about ten times
    // cheaper than VACUUM INTO, which rebuilds every table and index.
    copyFileSync(catalog.path, temp);
  } else {
    // VACUUM INTO writes a consistent snapshot of the main database only.
    catalog.writeSnapshot(temp);
  }
  // The file list of an encrypted archive is nobody else's business (as key files).
  chmodSync(temp, 0o600);
  syncFileSystem(temp);
  renameSync(temp, target);
  fsyncDirectory(disk.layout.meta);
}
