import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { requireDb, type Settings } from "../config.ts";
import { readDiskLabel } from "../disk/disk-label.ts";
import { diskLayout } from "../disk/layout.ts";
import { diskRowOf } from "../disk/mounted-disk.ts";
import { diskCatalogIsWhole, rebuildDiskCatalog, type RebuiltDiskCatalog } from "../disk/rebuild-disk-catalog.ts";
import { unlockDisk } from "../disk/unlock.ts";
import { BlaineError, ExitCode, UsageError, shellWord, type ExitCode as ExitCodeValue } from "../errors.ts";
import { quotedPath } from "../fs/byte-names.ts";
import { KeySource } from "../secrets/key-source.ts";
import type { Output } from "./output.ts";

export interface DiskRebuildResult extends Partial<RebuiltDiskCatalog> {
  readonly exitCode: ExitCodeValue;
  readonly dir: string;
  readonly label: string;
  /** Whether the disk catalog was made again (false: it was whole, and --force was not given). */
  readonly rebuilt: boolean;
}

/**
 * `blaine disk rebuild DIR [--force]`: a disk whose own catalog was lost,
 * emptied or damaged gets it back from the host catalog and the data on the
 * disk (see rebuildDiskCatalog). Refused for a whole catalog unless forced
 * (a catalog recreated empty by an older Blaine is whole but wrong).
 */
export async function rebuildDisk(settings: Settings, options: { readonly dir: string; readonly force?: boolean }, output?: Output): Promise<DiskRebuildResult> {
  const root = resolve(options.dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new UsageError(`disk rebuild: ${options.dir}: no such directory (is the disk mounted?)`);
  const catalog = ArchiveCatalog.open(requireDb(settings), { lock: true });
  try {
    catalog.requireArchiveId();
    const label = readDiskLabel(root);
    if (!label) throw new BlaineError(`disk rebuild: ${options.dir} has no .blaine/disk.json`, ExitCode.usage);
    diskRowOf(catalog, options.dir, label);
    const layout = diskLayout(await unlockDisk(root, label, { readonly: false, keys: new KeySource(settings.keyfiles) }));
    const base = { dir: root, label: label.label };
    if (!options.force && diskCatalogIsWhole(layout)) {
      output?.say(`The catalog of disk "${label.label}" (${root}) is whole (integrity check ok): nothing to rebuild. Give --force to rebuild it anyway (the old one is kept aside).`);
      const result: DiskRebuildResult = { exitCode: ExitCode.ok, ...base, rebuilt: false };
      output?.result(result);
      return result;
    }
    const rebuilt = rebuildDiskCatalog(catalog, label, layout);
    catalog.sqlite.query("UPDATE disk_copies SET last_seen_at = ?, last_mount_path = ? WHERE id = ?").run(Date.now(), root, label.copyId);
    const result: DiskRebuildResult = {
      exitCode: rebuilt.damaged.length + rebuilt.missing.length > 0 ? ExitCode.damage : ExitCode.ok,
      ...base,
      rebuilt: true,
      ...rebuilt,
    };
    if (output) {
      output.say(
        `Rebuilt the catalog of disk "${label.label}" (${root}) from the host catalog and the data on the disk: ${rebuilt.entries} entries, ` +
          `${rebuilt.paritySets} parity set(s) found whole and recorded again.`,
      );
      if (rebuilt.keptAside) output.say(`The catalog that could not be used is kept as ${rebuilt.keptAside}.`);
      for (const path of rebuilt.damaged) output.say(`DAMAGED ${quotedPath(path)}: its data on disk "${label.label}" does not match the catalog`);
      for (const path of rebuilt.missing) output.say(`MISSING ${quotedPath(path)}: not on disk "${label.label}"`);
      if (rebuilt.damaged.length > 0) output.say(`Run "blaine verify --repair --dest ${shellWord(root)}" to repair damaged files from their parity.`);
      output.result(result);
    }
    return result;
  } finally {
    catalog.close();
  }
}
