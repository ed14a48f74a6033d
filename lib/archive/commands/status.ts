import { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { requireDb, type Settings } from "../settings.ts";
import { readDiskLabel } from "../disk/disk-label.ts";
import { diskDirectoriesOf } from "../disk/mount-disks.ts";
import { ExitCode, type ExitCode as ExitCodeValue } from "../../errors.ts";
import { formatBytes } from "../../size.ts";
import type { Output } from "../../cli/output.ts";
import { resolve } from "node:path";

export interface StatusResult {
  readonly exitCode: ExitCodeValue;
  readonly archiveId: string;
  readonly catalog: string;
  readonly files: number;
  readonly bytes: number;
  readonly disks: readonly {
    label: string;
    state: string;
    capacity: number | null;
    files: number;
    bytes: number;
    copies: number;
    mounted: string | null;
    lastSeen: string | null;
  }[];
  readonly lastRun: { started: string; finished: string | null; exitCode: number | null; summary: unknown } | null;
  /** Set while another command writes the catalog: what is shown is the catalog as it was when that command began. */
  readonly readingCopy: string | null;
}

/** The archive at a glance, from the host catalog alone (no disk needed). */
export function archiveStatus(settings: Settings, output?: Output): StatusResult {
  const db = requireDb(settings);
  const catalog = ArchiveCatalog.open(db, { readonly: true });
  try {
    // A catalog without an archive is empty or damaged: never shown as an archive of 0 files.
    const archiveId = catalog.requireArchiveId();
    const totals = catalog.files.totals();
    const mountedByDisk = new Map<string, string>();
    for (const dest of diskDirectoriesOf(settings)) {
      const label = readDiskLabel(resolve(dest));
      if (label) mountedByDisk.set(label.diskId, resolve(dest));
    }
    const disks = catalog.disks.overview().map((disk) => ({
      label: disk.label,
      state: disk.state,
      capacity: disk.capacity,
      files: disk.files,
      bytes: disk.bytes,
      copies: disk.copies,
      mounted: mountedByDisk.get(disk.id) ?? null,
      lastSeen: disk.lastSeenAt ? new Date(disk.lastSeenAt).toISOString() : null,
    }));
    const run = catalog.runs.last();
    const result: StatusResult = {
      exitCode: ExitCode.ok,
      archiveId,
      readingCopy: catalog.readingCopyNote ?? null,
      catalog: db,
      files: totals.files,
      bytes: totals.bytes,
      disks,
      lastRun: run
        ? {
            started: new Date(run.startedAt).toISOString(),
            finished: run.finishedAt ? new Date(run.finishedAt).toISOString() : null,
            exitCode: run.exitCode,
            summary: run.summary ? JSON.parse(run.summary) : null,
          }
        : null,
    };
    if (output) {
      if (catalog.readingCopyNote) output.say(`Note: ${catalog.readingCopyNote}.`);
      output.say(`Archive ${result.archiveId} in ${db}: ${result.files} files, ${formatBytes(result.bytes)}.`);
      for (const disk of disks) {
        const capacity = disk.capacity !== null ? ` of ${formatBytes(disk.capacity)}` : "";
        output.say(
          `  disk "${disk.label}" [${disk.state}] ${disk.files} files, ${formatBytes(disk.bytes)}${capacity}, ${disk.copies} cop${disk.copies === 1 ? "y" : "ies"}, ` +
            `${disk.mounted ? `mounted at ${disk.mounted}` : `last seen ${disk.lastSeen ?? "never"}`}`,
        );
      }
      if (run) {
        const state = run.finishedAt ? `finished with exit code ${run.exitCode}` : "did not finish (killed or still running)";
        output.say(`Last run: started ${result.lastRun!.started}, ${state}.`);
      } else output.say("No run yet.");
      output.result(result);
    }
    return result;
  } finally {
    catalog.close();
  }
}
