import { lstatSync } from "node:fs";
import type { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { toRecord } from "../catalog/archive-catalog.ts";
import { fsPath } from "../../fs/byte-names.ts";
import type { HostFileRow } from "../catalog/records.ts";
import type { InodeRefresh } from "../catalog/inode-refresh.ts";
import type { ArchivedState } from "../catalog/files-table.ts";
import type { SeenPaths } from "../catalog/seen-paths.ts";
import type { FileEntry, PlannedFile } from "./types.ts";
import type { RunReport } from "../run/report.ts";

/**
 * How unchanged files are recognised without reading them. "inode" (the
 * default) also finds renames by inode; pools whose inodes are not stable
 * (MergerFS) use "path-size-mtime", or "size-mtime" to also find renames by
 * size and mtime.
 */
export type MatchMode = "inode" | "path-size-mtime" | "size-mtime";
export const MATCH_MODES: readonly MatchMode[] = ["inode", "path-size-mtime", "size-mtime"];

export interface DiffOptions {
  readonly catalog: ArchiveCatalog;
  readonly match: MatchMode;
  readonly seen: SeenPaths;
  readonly report: RunReport;
  /** Where the inodes of unchanged files that changed are recorded anew (not in dry runs). */
  readonly inodes?: InodeRefresh;
  readonly signal?: AbortSignal;
  /** Called as the stage begins: the run learns that its walk is compared with the catalog (deletions depend on it). */
  readonly onStart?: () => void;
}

/**
 * Compares each walked entry with the catalog. Unchanged files stop here
 * (counted, never read); new, modified and renamed ones go on.
 */
export async function* diff(entries: AsyncIterable<FileEntry>, options: DiffOptions): AsyncGenerator<PlannedFile> {
  const { catalog, match, seen, report } = options;
  options.onStart?.();
  const mayHaveArchivedName = archivedNameTest(catalog, match);
  for await (const entry of entries) {
    const archived = seen.visit(entry.path);
    const same = archived && sameUnlessInode(archived, entry);
    if (same && (match !== "inode" || sameInode(archived, entry))) {
      report.counts.unchanged++;
      // Trusted without its inode: the new one is recorded, for runs that match by inode.
      if (!sameInode(archived, entry)) options.inodes?.note(entry.path, entry.dev, entry.ino);
      continue;
    }
    // The whole row (hash, disk) is read only for a path that changed.
    const previous = archived && catalog.files.byPath(entry.path);
    if (previous) {
      // Only its inode changed: the hasher tells by content whether it is unchanged.
      if (same) yield { ...entry, change: "modified", previous: toRecord(previous), inodeChanged: true };
      else {
        report.planned(entry.size);
        yield { ...entry, change: "modified", previous: toRecord(previous) };
      }
      continue;
    }
    const moved = mayHaveArchivedName(entry) ? findRenameSource(entry, catalog, match) : undefined;
    if (moved?.renamed) {
      yield { ...entry, change: "renamed", renameFrom: moved.row.path, hash: moved.row.hash, action: "rename" };
      continue;
    }
    report.planned(entry.size);
    // A second name of an archived inode: same content, known hash, stored as a hardlink.
    yield moved ? { ...entry, change: "new", hash: moved.row.hash } : { ...entry, change: "new" };
  }
  seen.flush();
  options.inodes?.flush();
}

/**
 * Whether a new path may be an archived file under another name (renamed,
 * or a second hardlink): not when it has one link and the archive held
 * nothing of its device (by size and mtime: nothing at all) when the walk
 * first met that device. That spares an initial run a catalog lookup per
 * file. A file the run itself stored under another name and that lost
 * that name during the walk is then copied again: correct, if not thrifty.
 */
function archivedNameTest(catalog: ArchiveCatalog, match: MatchMode): (entry: FileEntry) => boolean {
  if (match === "path-size-mtime") return () => false;
  if (match === "size-mtime") {
    const hadFiles = catalog.files.any();
    return (entry) => entry.nlink > 1 || hadFiles;
  }
  const knownDevices = new Map<number, boolean>();
  return (entry) => {
    if (entry.nlink > 1) return true;
    let known = knownDevices.get(entry.dev);
    if (known === undefined) {
      known = catalog.files.anyOnDevice(entry.dev);
      knownDevices.set(entry.dev, known);
    }
    return known;
  };
}

/** Unchanged as far as path, kind, size, mtime, mode (and a symlink's target) tell. */
function sameUnlessInode(previous: ArchivedState, entry: FileEntry): boolean {
  if (previous.kind !== entry.kind || previous.size !== entry.size || previous.mtimeMs !== entry.mtimeMs) return false;
  if (entry.kind === "symlink" && previous.linkTarget !== entry.linkTarget) return false;
  return previous.mode === entry.mode;
}

function sameInode(previous: ArchivedState, entry: FileEntry): boolean {
  return previous.dev === entry.dev && previous.ino === entry.ino;
}

/**
 * An archived row this new path may have come from. `renamed` when that
 * row's path is gone (a rename or move); otherwise the path is a new
 * hardlink of an archived inode.
 */
function findRenameSource(
  entry: FileEntry,
  catalog: ArchiveCatalog,
  match: MatchMode,
): { row: HostFileRow; renamed: boolean } | undefined {
  if (match === "path-size-mtime") return undefined;
  const candidates =
    match === "inode"
      ? catalog.files.byInode(entry.dev, entry.ino)
      : catalog.files.bySizeAndMtime(entry.size, entry.mtimeMs);
  let sibling: HostFileRow | undefined;
  for (const row of candidates) {
    if (row.kind !== entry.kind || row.size !== entry.size || row.mtimeMs !== entry.mtimeMs) continue;
    if (entry.kind === "symlink" && row.linkTarget !== entry.linkTarget) continue;
    const now = statQuiet(row.path);
    const sameFile = now !== undefined && (match !== "inode" || (now.ino === entry.ino && now.dev === entry.dev));
    if (!now) return { row, renamed: true };
    if (match === "inode" && sameFile) sibling = row;
  }
  return sibling ? { row: sibling, renamed: false } : undefined;
}

function statQuiet(path: string): { ino: number; dev: number } | undefined {
  try {
    const stats = lstatSync(fsPath(path));
    return { ino: stats.ino, dev: stats.dev };
  } catch {
    return undefined;
  }
}
