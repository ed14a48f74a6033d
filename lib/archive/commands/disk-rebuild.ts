import { existsSync, mkdirSync, renameSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { requireDb, type Settings } from "../settings.ts";
import { readDiskLabel, writeDiskLabel, type DiskLabel } from "../disk/disk-label.ts";
import { recoverDiskLabel } from "../disk/rebuild-disk-label.ts";
import { diskLayout } from "../disk/layout.ts";
import { diskRowOf } from "../disk/mounted-disk.ts";
import { diskCatalogIsWhole, disownedFiles, rebuildDiskCatalog, type RebuiltDiskCatalog } from "../disk/rebuild-disk-catalog.ts";
import { unlockDisk } from "../disk/unlock.ts";
import { ExitCode, UsageError, errorMessage, shellWord, type ExitCode as ExitCodeValue } from "../../errors.ts";
import { quotedPath } from "../../fs/byte-names.ts";
import { KeySource } from "../../secrets/key-source.ts";
import type { Output } from "../../cli/output.ts";

export interface DiskRebuildResult extends Partial<RebuiltDiskCatalog> {
  readonly exitCode: ExitCodeValue;
  readonly dir: string;
  readonly label: string;
  /** Whether the disk catalog was made again (false: it was whole, and --force was not given). */
  readonly rebuilt: boolean;
  /** Whether `.blaine/disk.json` was lost (or unreadable) and written again. */
  readonly labelRebuilt: boolean;
}

/**
 * `blaine disk rebuild DIR [--force] [--label NAME] [--copy ID]`: a disk
 * that lost its own records gets them back. A lost or unreadable disk.json
 * is written again for the disk and copy the host catalog and the data show
 * it to be (see recoverDiskLabel; never a new disk: that would disown the
 * data). A lost, emptied or damaged disk catalog is made again from the
 * host catalog and the data (see rebuildDiskCatalog); a whole one is left
 * alone unless forced (one recreated empty by an older Blaine is whole but wrong).
 */
export async function rebuildDisk(
  settings: Settings,
  options: { readonly dir: string; readonly force?: boolean; readonly label?: string; readonly copy?: string },
  output?: Output,
): Promise<DiskRebuildResult> {
  const root = resolve(options.dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new UsageError(`disk rebuild: ${options.dir}: no such directory (is the disk mounted?)`);
  const catalog = ArchiveCatalog.open(requireDb(settings), { lock: true });
  try {
    catalog.requireArchiveId();
    const keys = new KeySource(settings.keyfiles);
    let label: DiskLabel | undefined;
    let labelProblem = "is missing";
    try {
      label = readDiskLabel(root);
    } catch (error) {
      labelProblem = `cannot be read (${errorMessage(error)})`;
    }
    let labelRebuilt = false;
    if (!label) {
      const recovered = await recoverDiskLabel(catalog, root, { labelHint: options.label, copyHint: options.copy, keys });
      label = recovered.label;
      const labelPath = diskLayout(root).label;
      if (existsSync(labelPath)) renameSync(labelPath, `${labelPath}.damaged-${new Date().toISOString().replaceAll(":", "")}`);
      mkdirSync(diskLayout(root).meta, { recursive: true });
      writeDiskLabel(root, label);
      labelRebuilt = true;
      output?.say(`${labelPath} ${labelProblem}: written again for ${recovered.evidence}.`);
    }
    diskRowOf(catalog, options.dir, label);
    const layout = diskLayout(await unlockDisk(root, label, { readonly: false, keys }));
    const base = { dir: root, label: label.label, labelRebuilt };
    const whole = diskCatalogIsWhole(layout);
    // Whole but empty while the disk holds files: made anew empty (as Blaine once did), as bad as lost.
    const disowned = whole ? disownedFiles(catalog, label, layout.catalog) : undefined;
    if (disowned !== undefined) output?.say(`The catalog of disk "${label.label}" holds none of the ${disowned} files the host catalog places on it (made anew empty): rebuilding it.`);
    if (!options.force && whole && disowned === undefined) {
      output?.say(`The catalog of disk "${label.label}" (${root}) is whole (integrity check ok): nothing to rebuild. Give --force to rebuild it anyway (the old one is kept aside).`);
      const result: DiskRebuildResult = { exitCode: ExitCode.ok, ...base, rebuilt: false };
      output?.result(result);
      return result;
    }
    const rebuilt = rebuildDiskCatalog(catalog, label, layout);
    catalog.disks.copySeen(label.copyId, root);
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
