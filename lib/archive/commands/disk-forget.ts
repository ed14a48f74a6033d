import { existsSync, realpathSync } from "node:fs";
import { resolve } from "node:path";
import { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { requireDb, type Settings } from "../settings.ts";
import { DeferredQueue } from "../catalog/deferred-actions-table.ts";
import { readDiskLabel } from "../disk/disk-label.ts";
import { BlaineError, ExitCode, UsageError, type ExitCode as ExitCodeValue } from "../../errors.ts";
import { quotedPath } from "../../fs/byte-names.ts";
import { formatBytes } from "../../size.ts";
import type { Output } from "../../cli/output.ts";

export interface ForgetResult {
  readonly exitCode: ExitCodeValue;
  readonly label: string;
  /** The copy forgotten: its id, number in `disk list`, and where it was last mounted. */
  readonly copy: { readonly id: string; readonly number: number; readonly lastMountPath: string | null };
  /** Deferred actions that were waiting for it (dropped with it). */
  readonly droppedActions: number;
  /** Archived paths whose data only the forgotten copy held (only with --force): dropped from the archive. */
  readonly lost: readonly string[];
  readonly lostBytes: number;
}

interface CopyRow {
  readonly id: string;
  readonly lastMountPath: string | null;
}

/**
 * `blaine disk forget LABEL --copy N|ID|PATH`: step 9 of the routine, a
 * twin about to be wiped (to become another disk's twin) leaves the
 * archive; the disk keeps its other copies. Refused while the other copies
 * still wait for data this copy holds (a catch-up they have not made: the
 * twin was the only place it went), listing those files; --force forgets
 * it anyway and drops them from the archive, so that no catalog row claims
 * data no disk holds (a later run archives them again if the sources still
 * have them).
 */
export function forgetCopy(settings: Settings, options: { readonly label: string; readonly copy?: string; readonly force?: boolean }, output?: Output): ForgetResult {
  if (!options.label || !options.copy) throw new UsageError("usage: blaine disk forget LABEL --copy N|ID|PATH [--force]");
  const catalog = ArchiveCatalog.open(requireDb(settings), { lock: true });
  try {
    const disk = catalog.disks.byLabel(options.label);
    if (!disk) throw new UsageError(`disk forget: the archive has no disk labelled "${options.label}"`);
    const copies = catalog.disks.copiesOf(disk.id);
    const index = findCopy(copies, options.copy, disk.id);
    if (index < 0) {
      throw new UsageError(
        `disk forget: disk "${options.label}" has no copy ${JSON.stringify(options.copy)} (its copies: ` +
          `${copies.map((copy, i) => `${i + 1} ${copy.id.slice(0, 8)} at ${copy.lastMountPath ?? "?"}`).join(", ")}; see blaine disk list)`,
      );
    }
    const copy = copies[index];
    if (copies.length === 1) {
      throw new UsageError(`disk forget: copy ${index + 1} is the only copy of disk "${options.label}"; to take the disk out of the archive use "blaine disk retire ${options.label}"`);
    }
    const lost = new DeferredQueue(catalog).heldOnlyBy(copy.id, disk.id);
    const lostBytes = lost.reduce((sum, file) => sum + file.size, 0);
    const where = `copy ${index + 1} of disk "${options.label}" (last at ${copy.lastMountPath ?? "?"})`;
    if (lost.length > 0 && !options.force) {
      if (output) for (const file of lost) output.say(`ONLY ON THIS COPY ${quotedPath(file.path)}`);
      throw new BlaineError(
        `${where} holds ${lost.length} file(s), ${formatBytes(lostBytes)}, that the other copies have not caught up with (listed above; e.g. ${lost[0].path}); nothing was changed. ` +
          `Mount the other copy with this one (blaine run --dest … --dest …) so it catches up first, or use --force to forget this copy anyway and drop those files from the archive.`,
        ExitCode.usage,
      );
    }
    let droppedActions = 0;
    const queue = new DeferredQueue(catalog);
    catalog.transaction(() => {
      for (const file of lost) {
        catalog.files.delete(file.path);
        // Nobody can fetch them now: the other copies stop waiting for them.
        queue.dropPath(disk.id, file.path);
      }
      droppedActions = queue.dropCopy(copy.id);
      catalog.disks.deleteCopy(copy.id);
    });
    const result: ForgetResult = {
      exitCode: ExitCode.ok,
      label: options.label,
      copy: { id: copy.id, number: index + 1, lastMountPath: copy.lastMountPath },
      droppedActions,
      lost: lost.map((file) => file.path),
      lostBytes,
    };
    if (output) {
      for (const path of result.lost) output.say(`LOST ${quotedPath(path)}`);
      output.say(
        `Forgot ${where}; disk "${options.label}" has ${copies.length - 1} cop${copies.length - 1 === 1 ? "y" : "ies"} left` +
          (lost.length > 0 ? `; ${lost.length} file(s), ${formatBytes(lostBytes)}, are no longer in the archive (listed above)` : "") +
          ". Its drive can be wiped now.",
      );
      output.result(result);
    }
    return result;
  } finally {
    catalog.close();
  }
}

/** The copy named by its number in `disk list` (1, 2, …), its id (or the first characters shown), or a directory: where it was last mounted or one holding it now. */
function findCopy(copies: readonly CopyRow[], named: string, diskId: string): number {
  if (/^\d+$/.test(named)) {
    const number = Number(named);
    return number >= 1 && number <= copies.length ? number - 1 : -1;
  }
  const byId = copies.findIndex((copy) => copy.id === named || (named.length >= 8 && copy.id.startsWith(named)));
  if (byId >= 0) return byId;
  const path = resolve(named);
  const real = existsSync(path) ? realpathSync(path) : path;
  const label = existsSync(path) ? readDiskLabel(real) : undefined;
  if (label?.diskId === diskId) return copies.findIndex((copy) => copy.id === label.copyId);
  return copies.findIndex((copy) => copy.lastMountPath !== null && (copy.lastMountPath === path || copy.lastMountPath === real));
}
