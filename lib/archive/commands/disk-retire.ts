import { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { DeferredQueue } from "../catalog/deferred-actions-table.ts";
import { requireDb, type Settings } from "../settings.ts";
import { BlaineError, ExitCode, UsageError, type ExitCode as ExitCodeValue } from "../../errors.ts";
import { formatBytes } from "../../size.ts";
import type { Output } from "../../cli/output.ts";
import { quotedPath } from "../../fs/byte-names.ts";

export interface RetireResult {
  readonly exitCode: ExitCodeValue;
  readonly label: string;
  /** Archived paths whose only copy was on the disk (only with --force): dropped from the archive. */
  readonly lost: readonly string[];
  readonly lostBytes: number;
}

/**
 * `blaine disk retire LABEL`: takes a disk out of the archive. Every file
 * lives on exactly one disk (its twins are copies of that disk), so a disk
 * that still holds files holds their only copy: refused unless --force,
 * which drops those files from the catalog (a later run archives them again
 * if the sources still have them) and lists them.
 */
export function retireDisk(settings: Settings, options: { readonly label: string; readonly force?: boolean }, output?: Output): RetireResult {
  if (!options.label) throw new UsageError("usage: blaine disk retire LABEL [--force]");
  const catalog = ArchiveCatalog.open(requireDb(settings), { lock: true });
  try {
    const disk = catalog.disks.byLabel(options.label);
    if (!disk) throw new UsageError(`disk retire: the archive has no disk labelled "${options.label}"`);
    const held = catalog.files.ofDisk(disk.id);
    const lostBytes = held.reduce((sum, file) => sum + file.size, 0);
    if (held.length > 0 && !options.force) {
      throw new BlaineError(
        `disk "${options.label}" holds the only copy of ${held.length} archived file(s), ${formatBytes(lostBytes)} (e.g. ${held[0].path}); ` +
          `nothing was changed. Use --force to retire it anyway and drop them from the archive.`,
        ExitCode.usage,
      );
    }
    catalog.transaction(() => {
      catalog.disks.markRetired(disk.id);
      catalog.files.deleteOfDisk(disk.id);
      new DeferredQueue(catalog).dropDisk(disk.id);
    });
    const result: RetireResult = { exitCode: ExitCode.ok, label: options.label, lost: held.map((file) => file.path), lostBytes };
    if (output) {
      for (const path of result.lost) output.say(`LOST ${quotedPath(path)}`);
      output.say(
        `Disk "${options.label}" is retired${held.length > 0 ? `; ${held.length} file(s), ${formatBytes(lostBytes)}, are no longer in the archive (listed above)` : ""}.`,
      );
      output.result(result);
    }
    return result;
  } finally {
    catalog.close();
  }
}
