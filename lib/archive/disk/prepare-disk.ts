import { mkdirSync } from "node:fs";
import { DiskCatalogFile } from "../catalog/disk-catalog-file.ts";
import type { KeySource } from "../../secrets/key-source.ts";
import { BlaineError, ExitCode, shellWord } from "../../errors.ts";
import { readDiskLabel, writeDiskLabel, type DiskLabel } from "./disk-label.ts";
import { formerDiskEvidence } from "./rebuild-disk-label.ts";
import { diskLayout, type DiskLayout } from "./layout.ts";
import { createEncryptedDisk } from "./unlock.ts";

/**
 * Makes `root` an archive disk on its file system (disk init, disk clone):
 * the cipher directory when encrypted, temp directory and empty disk
 * catalog, and `disk.json` last, which is what makes Blaine recognise it.
 * Returns the layout of the data (for an encrypted disk, behind its mount).
 * Refuses a directory that holds a disk whose disk.json was lost.
 */
export async function prepareDiskDirectory(root: string, label: DiskLabel, keys: KeySource): Promise<DiskLayout> {
  // An encrypted disk's catalog and data live behind its mount; only disk.json stays in the clear.
  const layout = diskLayout(label.cipher ? await createEncryptedDisk(root, label, keys) : root);
  // Seen only now for an encrypted disk (through its mount); a killed init or clone left nothing of the kind.
  const evidence = readDiskLabel(root) ? undefined : formerDiskEvidence(layout.root);
  if (evidence) {
    throw new BlaineError(
      `${root} holds ${evidence} but no .blaine/disk.json: it is an archive disk that lost its label; ` +
        `run "blaine disk rebuild ${shellWord(root)}" to write it again (refusing to make it a new, empty disk)`,
      ExitCode.usage,
    );
  }
  mkdirSync(diskLayout(root).meta, { recursive: true });
  mkdirSync(layout.tmp, { recursive: true });
  DiskCatalogFile.open(layout.catalog, { create: true }).close();
  writeDiskLabel(root, label);
  return layout;
}
