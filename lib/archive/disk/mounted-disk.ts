import { existsSync, mkdirSync, readdirSync, rmSync, statfsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import type { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { DiskCatalogFile } from "../catalog/disk-catalog-file.ts";
import type { DiskRow } from "../catalog/disks-table.ts";
import { BlaineError, ExitCode, shellWord } from "../../errors.ts";
import { readDiskLabel, type DiskLabel } from "./disk-label.ts";
import { diskLayout, type DiskLayout } from "./layout.ts";
import { formerDiskEvidence } from "./rebuild-disk-label.ts";
import { KeySource } from "../../secrets/key-source.ts";
import { DeferredQueue } from "../catalog/deferred-actions-table.ts";
import { cipherDirOf, unlockDisk } from "./unlock.ts";

/**
 * An archive disk that is mounted now, recognised by its disk.json and
 * attached to the host catalog connection under `alias`.
 */
export class MountedDisk {
  readonly layout: DiskLayout;
  readonly label: DiskLabel;
  readonly alias: string;
  readonly row: DiskRow;
  /** The directory the disk was named by; for an encrypted disk `root` is the private mountpoint showing its contents. */
  readonly dir: string;
  /** This copy's number among its disk's copies (as `disk list` numbers them), and how many there are. */
  readonly copy: { readonly number: number; readonly of: number };

  private constructor(layout: DiskLayout, label: DiskLabel, alias: string, row: DiskRow, dir: string, copy: { number: number; of: number }) {
    this.layout = layout;
    this.label = label;
    this.alias = alias;
    this.row = row;
    this.dir = dir;
    this.copy = copy;
  }

  /** How messages name this copy: as people know it (label, copy number when there are several, directory), never the private mountpoint. */
  get shownAs(): string {
    return `disk "${this.label.label}" (${this.copy.of > 1 ? `copy ${this.copy.number} at ` : ""}${this.dir})`;
  }

  get root(): string {
    return this.layout.root;
  }

  /**
   * Recognises `dir` as a disk of the catalog's archive, brings its catalog
   * schema up to date and attaches it. Refuses directories of other archives
   * and copies the catalog does not know. The one place a directory becomes
   * a MountedDisk (async so that unlocking an encrypted disk can go here).
   * An encrypted disk is mounted at a private mountpoint (read-only when
   * `readonly`), which becomes its root; `dir` keeps only disk.json.
   */
  static async open(
    catalog: ArchiveCatalog,
    dir: string,
    alias: string,
    options: {
      readonly?: boolean;
      keys?: KeySource;
      /**
       * The command writes only to settle what a killed run or a deferred
       * action left (restore, verify): an encrypted disk with nothing to
       * settle is then mounted read-only, one with something read-write.
       */
      settleOnly?: boolean;
    } = {},
  ): Promise<MountedDisk> {
    const root = resolve(dir);
    if (!existsSync(root) || !statSync(root).isDirectory()) {
      throw new BlaineError(`--dest ${dir}: no such directory (is the disk mounted?)`, ExitCode.usage);
    }
    const label = readDiskLabel(root);
    if (!label) throw notADiskError(dir, root);
    const row = diskRowOf(catalog, dir, label);
    const keys = options.keys ?? new KeySource();
    let dataRoot: string;
    let mountedReadOnly = options.readonly ?? false;
    if (label.cipher && !options.readonly && options.settleOnly && new DeferredQueue(catalog).count(label.copyId) === 0) {
      dataRoot = await unlockDisk(root, label, { readonly: true, keys });
      mountedReadOnly = true;
      // Remounted read-write only when there is something to settle.
      if (needsSettling(diskLayout(dataRoot))) {
        dataRoot = await unlockDisk(root, label, { readonly: false, keys });
        mountedReadOnly = false;
      }
    } else {
      dataRoot = await unlockDisk(root, label, { readonly: options.readonly ?? false, keys });
    }
    const layout = diskLayout(dataRoot);
    // Migrate on a connection of its own: the migrator works on "main". A
    // missing or empty catalog is never made anew here: an empty one would
    // disown everything on the disk (see blaine disk rebuild).
    DiskCatalogFile.open(layout.catalog, { readonly: mountedReadOnly, ...diskCatalogNaming(root, label, layout) }).close();
    catalog.attach(alias, layout.catalog);
    if (!mountedReadOnly) mkdirSync(layout.tmp, { recursive: true });
    if (!options.readonly) {
      catalog.disks.copySeen(label.copyId, root);
      catalog.disks.diskSeen(label.diskId);
    }
    const copies = catalog.disks.copiesOf(label.diskId).map((copy) => copy.id);
    return new MountedDisk(layout, label, alias, row, root, { number: copies.indexOf(label.copyId) + 1, of: copies.length });
  }

  /** Bytes of distinct content stored (hardlinks counted once). */
  usedBytes(catalog: ArchiveCatalog): number {
    return catalog.entries(this.alias).usedBytes();
  }

  /** Free bytes on the file system, its total size and its block size (what every file is rounded up to), as statfs says now. */
  fileSystemSpace(): { free: number; total: number; blockSize: number } {
    const stats = statfsSync(this.root);
    return { free: stats.bavail * stats.bsize, total: stats.blocks * stats.bsize, blockSize: stats.bsize };
  }

  /** Removes temp files no intent refers to (left by a run that was killed). */
  clearTemps(keep: ReadonlySet<string>): void {
    if (!existsSync(this.layout.tmp)) return;
    for (const name of readdirSync(this.layout.tmp)) {
      if (!keep.has(name)) rmSync(`${this.layout.tmp}/${name}`, { force: true, recursive: true });
    }
  }
}

/**
 * Why a directory without disk.json cannot be used: a fresh one is to be
 * initialised, but one that holds an archive disk's data lost its label,
 * and `disk init` would make it a new, empty disk around the old data.
 */
export function notADiskError(dir: string, root: string): BlaineError {
  const evidence = formerDiskEvidence(root);
  if (evidence) {
    return new BlaineError(
      `${dir} has lost its .blaine/disk.json but holds ${evidence}: run "blaine disk rebuild ${shellWord(root)}" to write it again from the host catalog ` +
        `(not "blaine disk init", which would make it a new, empty disk)`,
      ExitCode.failure,
    );
  }
  return new BlaineError(`--dest ${dir} is not an archive disk (no .blaine/disk.json): run "blaine disk init ${shellWord(dir)} --label NAME"`, ExitCode.usage);
}

/**
 * The host catalog's row of the disk whose label `dir` holds, after checking
 * that it is a disk of this archive and a copy the catalog knows.
 */
export function diskRowOf(catalog: ArchiveCatalog, dir: string, label: DiskLabel): DiskRow {
  const archiveId = catalog.archiveId();
  if (label.archiveId !== archiveId) {
    throw new BlaineError(
      `${dir} belongs to another archive (${label.archiveId}), not to the one in catalog ${catalog.path} (${archiveId ?? "none"})`,
      ExitCode.usage,
    );
  }
  const row = catalog.disks.byId(label.diskId);
  if (!row) {
    throw new BlaineError(`${dir} claims disk "${label.label}" (${label.diskId}), which catalog ${catalog.path} does not know`, ExitCode.usage);
  }
  if (catalog.disks.diskOfCopy(label.copyId) !== label.diskId) {
    throw new BlaineError(
      `${dir} claims to be a copy (${label.copyId}) of disk "${row.label}" that catalog ${catalog.path} does not know: was it forgotten with "blaine disk forget", or cloned with another catalog?`,
      ExitCode.usage,
    );
  }
  return row;
}

/**
 * How errors name a disk's catalog (as the user knows the disk, not by a
 * private mountpoint) and what they advise when it is lost or unreadable.
 */
export function diskCatalogNaming(dir: string, label: DiskLabel, layout: DiskLayout): { name: string; advice: string } {
  return {
    name: label.cipher
      ? `the catalog of encrypted disk "${label.label}" (.blaine/catalog.db inside ${cipherDirOf(dir)})`
      : `the catalog of disk "${label.label}" (${layout.catalog})`,
    advice: `run "blaine disk rebuild ${shellWord(dir)}" to rebuild it from the host catalog and the data on the disk`,
  };
}

/**
 * Whether a disk seen read-only holds anything a writing command must
 * settle first: temps or intents of a killed run, a journal to roll back, or a catalog to upgrade.
 * When in doubt (the catalog cannot be read), yes.
 */
function needsSettling(layout: DiskLayout): boolean {
  if (existsSync(layout.tmp) && readdirSync(layout.tmp).length > 0) return true;
  // A killed writer's journal: only a read-write mount can roll it back.
  const journal = `${layout.catalog}-journal`;
  if (existsSync(journal) && statSync(journal).size > 0) return true;
  try {
    const disk = DiskCatalogFile.open(layout.catalog, { readonly: true });
    try {
      return disk.entries.anyIntents();
    } finally {
      disk.close();
    }
  } catch {
    return true;
  }
}
