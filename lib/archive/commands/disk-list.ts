import { resolve } from "node:path";
import { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { requireDb, type Settings } from "../settings.ts";
import { DeferredQueue } from "../catalog/deferred-actions-table.ts";
import { readDiskLabel } from "../disk/disk-label.ts";
import { diskDirectoriesOf } from "../disk/mount-disks.ts";
import { ExitCode, type ExitCode as ExitCodeValue } from "../../errors.ts";
import { formatBytes } from "../../size.ts";
import type { Output } from "../../cli/output.ts";

export interface DiskListing {
  readonly label: string;
  readonly id: string;
  readonly state: string;
  readonly capacity: number | null;
  /** Bytes of distinct content the host catalog places on it, and its file count. */
  readonly used: number;
  readonly files: number;
  readonly lastSeen: string | null;
  readonly copies: readonly {
    readonly id: string;
    /** Where it is mounted now (among --dest and `disks`), else null. */
    readonly mounted: string | null;
    readonly lastMountPath: string | null;
    readonly lastSeen: string | null;
    /** Deferred actions waiting for this copy. */
    readonly pending: number;
    /** Files only this copy holds while the disk's other copies still wait for them (what `disk forget` would lose). */
    readonly onlyHere: number;
  }[];
}

/**
 * `blaine disk list`: every disk with its copies, which are mounted now,
 * used / capacity, the deferred actions each copy waits for, and when it was
 * last seen. Reads the host catalog and the disk.json of the given
 * directories only; nothing is written.
 */
export function listDisks(settings: Settings, output?: Output): { exitCode: ExitCodeValue; disks: DiskListing[] } {
  const catalog = ArchiveCatalog.open(requireDb(settings), { readonly: true });
  try {
    const mounted = new Map<string, string>();
    for (const dir of diskDirectoriesOf(settings)) {
      try {
        const label = readDiskLabel(resolve(dir));
        if (label && !mounted.has(label.copyId)) mounted.set(label.copyId, resolve(dir));
      } catch {
        // A damaged disk.json is reported by the commands that use the disk.
      }
    }
    const queue = new DeferredQueue(catalog);
    const iso = (ms: number | null) => (ms ? new Date(ms).toISOString() : null);
    const disks = catalog.disks.overview().map((disk): DiskListing => {
      const copies = catalog.disks.copiesOf(disk.id);
      return {
        label: disk.label,
        id: disk.id,
        state: disk.state,
        capacity: disk.capacity,
        used: disk.bytes,
        files: disk.files,
        lastSeen: iso(disk.lastSeenAt),
        copies: copies.map((copy) => ({
          id: copy.id,
          mounted: mounted.get(copy.id) ?? null,
          lastMountPath: copy.lastMountPath,
          lastSeen: iso(copy.lastSeenAt),
          pending: queue.count(copy.id),
          onlyHere: copies.length > 1 ? queue.heldOnlyBy(copy.id, disk.id).length : 0,
        })),
      };
    });
    if (output) {
      if (catalog.readingCopyNote) output.say(`Note: ${catalog.readingCopyNote}.`);
      for (const disk of disks) {
        const capacity = disk.capacity !== null ? ` / ${formatBytes(disk.capacity)}` : "";
        output.say(`disk "${disk.label}" [${disk.state}] ${formatBytes(disk.used)}${capacity} used, ${disk.files} files`);
        for (const [index, copy] of disk.copies.entries()) {
          const where = copy.mounted ? `mounted at ${copy.mounted}` : `not mounted (last seen ${copy.lastSeen ?? "never"} at ${copy.lastMountPath ?? "?"})`;
          const onlyHere = copy.onlyHere > 0 ? `; holds ${copy.onlyHere} file(s) the other copies still lack: do not wipe it yet` : "";
          output.say(`  copy ${index + 1} ${copy.id.slice(0, 8)}: ${where}; ${copy.pending} pending action(s)${onlyHere}`);
        }
      }
      if (disks.length === 0) output.say("No disks yet: blaine disk init DIR --label NAME.");
      output.result({ disks });
    }
    return { exitCode: ExitCode.ok, disks };
  } finally {
    catalog.close();
  }
}
