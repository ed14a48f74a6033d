import { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { requireDb, type Settings } from "../config.ts";
import { recoverDisk } from "../disk/disk-writer.ts";
import { MountedDisk } from "../disk/mounted-disk.ts";

export interface OpenedArchive {
  readonly catalog: ArchiveCatalog;
  readonly disks: readonly MountedDisk[];
  close(): void;
}

/**
 * Opens the catalog and the mounted disks named by --dest for a command.
 * A writing open takes the lock and settles what a killed run left behind.
 */
export function openArchive(settings: Settings, options: { readonly write: boolean }): OpenedArchive {
  const catalog = ArchiveCatalog.open(requireDb(settings), { readonly: !options.write, lock: options.write });
  try {
    catalog.requireArchiveId();
    const disks = settings.dest.map((dest, index) => MountedDisk.open(catalog, dest, `disk${index}`, { readonly: !options.write }));
    if (options.write) for (const disk of disks) recoverDisk(catalog, disk);
    return {
      catalog,
      disks,
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
