import { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { requireDb, type Settings } from "../settings.ts";
import type { ApplyDeferredResult } from "../disk/apply-deferred.ts";
import { expandDiskDirectories, mountDisks } from "../disk/mount-disks.ts";
import type { MountedDisk } from "../disk/mounted-disk.ts";
import type { StaleCopy } from "../disk/stale-copy.ts";
import { KeySource } from "../../secrets/key-source.ts";

export interface OpenedArchive {
  readonly catalog: ArchiveCatalog;
  readonly disks: readonly MountedDisk[];
  /** What applying the mounted copies' deferred actions did (writing opens only). */
  readonly deferred: readonly ApplyDeferredResult[];
  /** Copies found older than the catalog knows them (see stale-copy.ts). */
  readonly stale: readonly StaleCopy[];
  /** Why a disk could not be settled (too full to record what a killed run left); the command reads it as its catalog says. */
  readonly unsettled: readonly string[];
  close(): void;
}

/**
 * Opens the catalog and the mounted disks (--dest, and `disks` globs) for a
 * command. A writing open takes the lock, settles what a killed run left
 * behind and applies each disk's deferred actions first.
 */
export async function openArchive(
  settings: Settings,
  options: {
    readonly write: boolean;
    /** Writes only to settle a killed run or deferred actions: encrypted disks with nothing to settle mount read-only. */
    readonly settleOnly?: boolean;
    readonly signal?: AbortSignal;
  },
): Promise<OpenedArchive> {
  const catalog = ArchiveCatalog.open(requireDb(settings), { readonly: !options.write, lock: options.write });
  try {
    catalog.requireArchiveId();
    const keys = new KeySource(settings.keyfiles);
    const { disks, deferred, stale, unsettled } = await mountDisks(catalog, expandDiskDirectories(settings.dest, settings.disks), { ...options, keys });
    return {
      catalog,
      disks,
      deferred,
      stale,
      unsettled,
      close: () => {
        for (const disk of disks) catalog.detach(disk.alias);
        catalog.close();
      },
    };
  } catch (error) {
    catalog.close();
    throw error;
  }
}
