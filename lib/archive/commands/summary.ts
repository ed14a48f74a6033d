import type { RunResult } from "../run/finish-run.ts";
import { formatBytes, formatDuration } from "../../size.ts";
import { quotedPath } from "../../fs/byte-names.ts";

/** The one-paragraph summary printed at the end of every run. */
export function formatRunSummary(result: RunResult): string {
  const seconds = Math.max(result.durationMs, 1) / 1000;
  const lines: string[] = [];
  const verb = result.dryRun ? "Dry run (nothing changed) for" : "Archived to";
  lines.push(
    `${verb} disk "${result.disk}" in ${formatDuration(result.durationMs)}: ${result.new} new, ${result.modified} modified, ` +
      `${result.renamed} renamed, ${result.deleted} deleted, ${result.unchanged} unchanged, ${result.skipped} skipped; ` +
      `${result.deduplicated} stored as hardlinks; ${formatBytes(result.bytesCopied)} ${result.dryRun ? "to copy" : `copied (${formatBytes(result.bytesCopied / seconds)}/s)`}.`,
  );
  if (result.recopied > 0) lines.push(`Copied again ${result.recopied} file(s) that verify found missing or damaged on the disk.`);
  if (result.recovered > 0) lines.push(`Settled ${result.recovered} operations left by an interrupted run.`);
  for (const label of result.filledUp ?? []) {
    lines.push(`Disk "${label}" is full (marked so)${label === result.disk ? "." : "; new data went on to the next mounted open disk."}`);
  }
  const deferred = result.deferred;
  if (deferred && deferred.applied > 0) lines.push(`Applied ${deferred.applied} deferred action(s) to the mounted disks.`);
  // Actions queued for a copy that was mounted are applied before the end: only what still waits is news.
  if (deferred && deferred.remaining > 0) {
    lines.push(
      `${deferred.remaining} deferred action(s) still wait${deferred.queued > 0 ? ` (${deferred.queued} queued by this run for disks or copies that are not mounted)` : ""}: blaine pending.`,
    );
  }
  if (result.errors.length > 0) {
    lines.push(`${result.errors.length} file(s) failed:`);
    for (const error of result.errors.slice(0, 20)) lines.push(`  ${quotedPath(error.path)}: ${error.message}`);
    if (result.errors.length > 20) lines.push(`  … and ${result.errors.length - 20} more (use --json for all)`);
  }
  if (result.notStored.files > 0) {
    lines.push(
      `Incomplete: ${result.notStored.files} file(s), ${formatBytes(result.notStored.bytes)}, did not fit; ` +
        `${formatBytes(result.bytesAvailable)} is left on the disk. A new disk is needed: blaine disk init DIR --label NAME.`,
    );
  }
  if (result.outOfSpace) lines.push(`Stopped recording: ${result.outOfSpace}. What was stored before is kept; nothing was deleted.`);
  if (result.safetyStop) lines.push(result.safetyStop);
  return lines.join("\n");
}
