import type { FileRecord } from "../catalog/records.ts";
import type { MountedDisk } from "../disk/mounted-disk.ts";
import type { FileChecksums } from "../../copy/digest-ring.ts";

/** What the walker saw of one path (files and symlinks; nothing else is yielded). */
export interface FileEntry {
  readonly path: string;
  readonly kind: "file" | "symlink";
  readonly size: number;
  readonly mtimeMs: number;
  /** st_mtim.tv_nsec, exact (see exact-mtime.ts); absent where a script made the entry without it. */
  readonly mtimeNsec?: number;
  readonly mode: number;
  readonly dev: number;
  readonly ino: number;
  readonly nlink: number;
  readonly linkTarget: string | null;
}

/** Named outcomes of comparing a path with the catalog. */
export type Change = "new" | "modified" | "renamed" | "unchanged";

/** An entry that needs work on the disk, with what the differ found out. */
export interface PlannedFile extends FileEntry {
  readonly change: Exclude<Change, "unchanged">;
  /** The catalog row this path had (modified files). */
  readonly previous?: FileRecord;
  /**
   * Path, kind, size, mtime and mode as archived, under another inode (a
   * tree copied anew): unchanged if its content hashes as `previous` did,
   * which the hasher checks.
   */
  readonly inodeChanged?: boolean;
  /** The archived path this file was renamed from (same inode, path gone). */
  readonly renameFrom?: string;
  /** Content hash, once known (renames and source hardlinks know it early). */
  readonly hash?: string;
  /** How the data will reach the disk; said by the plan stage (see Planner.plan), else the copier copies. */
  readonly action?: "copy" | "link" | "symlink" | "rename";
}

/** A planned file whose data waits on the disk (or needs no data), ready to commit. */
export interface StoredFile extends PlannedFile {
  readonly action: "copy" | "link" | "symlink" | "rename";
  readonly hash: string;
  /** Temp file name below .blaine/tmp holding the copied data (action "copy"). */
  readonly tempName?: string;
  /** The disk whose .blaine/tmp holds `tempName` (the space budget chose it when the copy started). */
  readonly disk?: MountedDisk;
  readonly bytesCopied: number;
  /** The copy's checksums for its parity set, computed from the copy's read (when the copier was asked for them: see CopierOptions.checksumsFor). */
  readonly checksums?: FileChecksums;
}

export function toFileRecord(file: FileEntry, hash: string): FileRecord {
  return {
    path: file.path,
    kind: file.kind,
    size: file.size,
    mtimeMs: file.mtimeMs,
    mtimeNsec: file.mtimeNsec ?? null,
    mode: file.mode,
    dev: file.dev,
    ino: file.ino,
    hash,
    linkTarget: file.linkTarget,
  };
}
