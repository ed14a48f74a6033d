import { mkdirSync } from "node:fs";
import { openCatalogDatabase } from "../catalog/open.ts";
import type { KeySource } from "../secrets/key-source.ts";
import { writeDiskLabel, type DiskLabel } from "./disk-label.ts";
import { diskLayout, type DiskLayout } from "./layout.ts";
import { createEncryptedDisk } from "./unlock.ts";

/**
 * Makes `root` an archive disk on its file system (disk init, disk clone):
 * the cipher directory when encrypted, temp directory and empty disk
 * catalog, and `disk.json` last, which is what makes Blaine recognise it.
 * Returns the layout of the data (for an encrypted disk, behind its mount).
 */
export async function prepareDiskDirectory(root: string, label: DiskLabel, keys: KeySource): Promise<DiskLayout> {
  // An encrypted disk's catalog and data live behind its mount; only disk.json stays in the clear.
  const layout = diskLayout(label.cipher ? await createEncryptedDisk(root, label, keys) : root);
  mkdirSync(diskLayout(root).meta, { recursive: true });
  mkdirSync(layout.tmp, { recursive: true });
  openCatalogDatabase(layout.catalog, "disk", { create: true }).close();
  writeDiskLabel(root, label);
  return layout;
}
