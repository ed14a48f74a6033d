/**
 * Archived files a copy of a disk no longer holds intact (missing, or
 * damaged beyond what parity repaired), and copying them again from a
 * place that still holds their content: the sources first. `blaine verify`
 * writes the list on the copy itself (`.blaine/damaged.json`), since damage
 * belongs to one physical copy; `verify --repair` and every later run that
 * mounts the copy copy them again, and keep listed what no source holds.
 */
import { linkSync, lstatSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import type { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import type { FileRecord } from "../catalog/records.ts";
import { errnoCode, errorMessage } from "../../errors.ts";
import { syncFileSystem, writeFileAtomic } from "../../fs/atomic.ts";
import { fsPath } from "../../fs/byte-names.ts";
import { DataTreeDirs } from "../../fs/data-tree-dirs.ts";
import { exactMtime, setTimes } from "../../fs/exact-mtime.ts";
import { placeFile } from "../../fs/place-file.ts";
import { fetchContent, type ApplyDeferredOptions } from "./apply-deferred.ts";
import type { MountedDisk } from "./mounted-disk.ts";

/** One archived path a copy does not hold intact, and what verify found. */
export interface DamagedPath {
  readonly path: string;
  readonly message: string;
  /** The content the path should hold, when listed: a path archived anew since then is not copied again. */
  readonly hash?: string;
}

export interface RecopyResult {
  /** Paths whose data was copied again (hash checked), and the bytes copied. */
  readonly recopied: readonly string[];
  readonly bytesCopied: number;
  /** Paths no mounted place holds the content of: still damaged, still listed. */
  readonly left: readonly DamagedPath[];
}

/** The list `verify` left on this copy (empty when none, or unreadable: verify finds the damage again). */
export function readDamaged(disk: MountedDisk): DamagedPath[] {
  try {
    const parsed = JSON.parse(readFileSync(disk.layout.damaged, "utf8")) as { damaged?: unknown };
    return Array.isArray(parsed.damaged) ? parsed.damaged.filter((item): item is DamagedPath => typeof item?.path === "string") : [];
  } catch {
    return [];
  }
}

/**
 * Replaces the copy's list (none: the file goes). False when the copy is
 * mounted read-only (an encrypted disk that `verify` did not need to write):
 * the damage is then only reported.
 */
export function writeDamaged(catalog: ArchiveCatalog, disk: MountedDisk, damaged: readonly DamagedPath[]): boolean {
  const listed = damaged.map((item) => ({ ...item, hash: item.hash ?? entryOf(catalog, disk, item.path)?.hash }));
  try {
    if (listed.length === 0) rmSync(disk.layout.damaged, { force: true });
    else writeFileAtomic(disk.layout.damaged, `${JSON.stringify({ damaged: listed }, null, 1)}\n`);
    return true;
  } catch (error) {
    if (errnoCode(error) === "EROFS" || errnoCode(error) === "EACCES") return false;
    throw error;
  }
}

/** The disk catalog's row of `path` on this copy, as a FileRecord (dev/ino are the source's: not needed here). */
function entryOf(catalog: ArchiveCatalog, disk: MountedDisk, path: string): FileRecord | undefined {
  const row = catalog.entries(disk.alias).byPath(path);
  if (!row) return undefined;
  const { kind, size, mtimeMs, mtimeNsec, mode, hash, linkTarget } = row;
  return { path, kind, size, mtimeMs, mtimeNsec, mode, hash, linkTarget, dev: 0, ino: 0 };
}

/**
 * Copies the data of `damaged` paths again onto this copy, from the first
 * place holding the same content (hash checked): the source path or another
 * archived source path of that content, then other mounted copies and disks.
 * The catalogs do not change (the path holds what they say once more), so
 * each step is one atomic rename over the damaged file: a kill leaves each
 * path either damaged (still listed, done again) or whole. Every path of the
 * content on this copy that was a hardlink of the damaged file, or is
 * missing or listed too, is linked to the new copy. Symlinks are made again
 * from the catalog. Paths no longer archived on this copy are dropped.
 */
export async function recopyDamaged(
  catalog: ArchiveCatalog,
  disk: MountedDisk,
  damaged: readonly DamagedPath[],
  options: Pick<ApplyDeferredOptions, "otherCopies" | "otherDisks" | "signal"> = {},
): Promise<RecopyResult> {
  const recopied: string[] = [];
  const left: DamagedPath[] = [];
  let bytesCopied = 0;
  const listed = new Map(damaged.map((item) => [item.path, item]));
  const done = new Set<string>();
  // Paths that may share one inode: the same content showing the same mtime and mode (see Content).
  const entries = catalog.entries(disk.alias);
  let tempCounter = 0;
  // Nothing is written below a symlink on the copy (see DataTreeDirs).
  const dirs = new DataTreeDirs(disk.root);
  const newTemp = () => disk.layout.tempPath(`${process.pid}-recopy-${Date.now().toString(36)}-${(tempCounter++).toString(36)}`);

  const linkTo = (from: string, path: string) => {
    if (!dirs.parentsAreReal(from)) throw new Error(`${from} is not on the disk: a symlink stands in its path`);
    const link = newTemp();
    linkSync(fsPath(from), fsPath(link));
    placeFile(link, disk.layout.dataPath(path), dirs);
  };

  for (const item of damaged) {
    options.signal?.throwIfAborted();
    if (done.has(item.path)) continue;
    const record = entryOf(catalog, disk, item.path);
    // No longer archived on this copy, or archived anew since it was listed.
    if (!record || (item.hash && item.hash !== record.hash)) continue;
    const location = disk.layout.dataPath(record.path);
    try {
      if (record.kind === "symlink") {
        const temp = newTemp();
        symlinkSync(fsPath(record.linkTarget ?? ""), fsPath(temp));
        setTimes(temp, exactMtime(record.mtimeMs, record.mtimeNsec), { noFollow: true });
        placeFile(temp, location, dirs);
        recopied.push(record.path);
        continue;
      }
      const others = entries.pathsShowingAlike(record).filter((path) => path !== record.path);
      const damagedInode = inodeOf(location);
      // Another path of this copy that verify found whole (not listed, a file of its own): a hardlink to it needs no data.
      const whole = others.find((path) => !listed.has(path) && !done.has(path) && ![undefined, damagedInode].includes(inodeOf(disk.layout.dataPath(path))));
      if (whole) linkTo(disk.layout.dataPath(whole), record.path);
      else {
        const temp = newTemp();
        if (!(await fetchContent(catalog, record, temp, options))) {
          left.push({ path: item.path, message: `${item.message}; no source or mounted copy holds its content any more` });
          continue;
        }
        placeFile(temp, location, dirs);
        bytesCopied += record.size;
      }
      recopied.push(record.path);
      done.add(record.path);
      // Its hardlinks on this copy, and other paths of the content that are missing or damaged, share the new copy.
      for (const path of others) {
        if (done.has(path)) continue;
        const inode = inodeOf(disk.layout.dataPath(path));
        if (!listed.has(path) && inode !== undefined && inode !== damagedInode) continue;
        linkTo(location, path);
        done.add(path);
        if (listed.has(path)) recopied.push(path);
      }
    } catch (error) {
      options.signal?.throwIfAborted();
      left.push({ path: item.path, message: `${item.message}; copying it again failed: ${errorMessage(error)}` });
    }
  }
  if (recopied.length > 0) syncFileSystem(disk.root);
  return { recopied, bytesCopied, left };
}

function inodeOf(location: string): number | undefined {
  try {
    return lstatSync(fsPath(location)).ino;
  } catch {
    return undefined;
  }
}
