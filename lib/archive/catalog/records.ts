/** What the catalogs know of one archived path. */
export interface FileRecord {
  readonly path: string;
  readonly kind: "file" | "symlink";
  readonly size: number;
  readonly mtimeMs: number;
  /** The nanoseconds of the mtime's second, exact; null in rows archived before they were kept (see exact-mtime.ts). */
  readonly mtimeNsec?: number | null;
  readonly mode: number;
  readonly dev: number;
  readonly ino: number;
  /** "sha1:<hex>" or "sha256:<hex>". */
  readonly hash: string;
  readonly linkTarget: string | null;
}

/** A host catalog row: a record plus the disk that holds it. */
export interface HostFileRow extends FileRecord {
  readonly diskId: string;
  readonly archivedAt: number;
}
