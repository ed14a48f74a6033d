import { existsSync, renameSync, rmSync } from "node:fs";
import { ExitCode, type ExitCode as ExitCodeValue } from "../errors.ts";
import { fsyncDirectory, syncFileSystem } from "../fs/atomic.ts";
import type { RunCounts, RunError } from "../report.ts";
import type { ArchiveRun } from "./run-context.ts";

/** What `blaine run --json` prints. */
export interface RunResult extends RunCounts {
  readonly exitCode: ExitCodeValue;
  readonly dryRun: boolean;
  readonly disk: string;
  readonly errors: readonly RunError[];
  readonly warnings: readonly RunError[];
  readonly notStored: { readonly files: number; readonly bytes: number };
  readonly bytesAvailable: number;
  readonly safetyStop: string | null;
  readonly recovered: number;
  readonly durationMs: number;
  readonly plan?: readonly string[];
}

export function exitCodeOf(run: ArchiveRun): ExitCodeValue {
  const { report } = run;
  if (report.safetyStop) return ExitCode.usage;
  if (report.notStored.files > 0) return ExitCode.incomplete;
  if (report.errors.length > 0) return ExitCode.failure;
  return ExitCode.ok;
}

/**
 * Ends a run: records it, and leaves a copy of the host catalog on the disk
 * (written atomically) so the disk alone can tell what the archive held.
 */
export function finishRun(run: ArchiveRun): RunResult {
  const { report, catalog } = run;
  const exitCode = exitCodeOf(run);
  const result: RunResult = {
    ...report.counts,
    exitCode,
    dryRun: run.settings.dryRun,
    disk: run.disk.label.label,
    errors: report.errors,
    warnings: report.warnings,
    notStored: report.notStored,
    bytesAvailable: run.space.available(),
    safetyStop: report.safetyStop ?? null,
    recovered: run.recovered,
    durationMs: Date.now() - report.startedAt,
    ...(run.settings.dryRun ? { plan: report.plan } : {}),
  };
  if (run.settings.dryRun) return result;
  const { errors: _errors, warnings: _warnings, plan: _plan, ...summary } = result;
  catalog.sqlite
    .query("UPDATE runs SET finished_at = ?, exit_code = ?, summary = ? WHERE id = ?")
    .run(Date.now(), exitCode, JSON.stringify({ ...summary, errorCount: report.errors.length }), run.runId ?? null);
  // Nothing changed: the copy on the disk already tells what the archive holds.
  const changed = report.counts.new + report.counts.modified + report.counts.renamed + report.counts.deleted > 0;
  if (changed || run.recovered > 0 || !existsSync(run.disk.layout.hostCatalogCopy)) copyHostCatalogToDisk(run);
  return result;
}

export function copyHostCatalogToDisk(run: ArchiveRun): void {
  const target = run.disk.layout.hostCatalogCopy;
  const temp = `${target}.tmp`;
  rmSync(temp, { force: true });
  // VACUUM INTO writes a consistent snapshot of the main database only.
  run.catalog.sqlite.query("VACUUM main INTO ?").run(temp);
  syncFileSystem(temp);
  renameSync(temp, target);
  fsyncDirectory(run.disk.layout.meta);
}
