import type { Database, Statement } from "bun:sqlite";
import { ContentHolders, sameHash, type Content, type Held } from "./content-holders.ts";
import type { FileRecord, HostFileRow } from "./records.ts";

/** What the differ compares of an archived path; the rest of its row is read only when the path changed. */
export type ArchivedState = Pick<HostFileRow, "path" | "kind" | "size" | "mtimeMs" | "mode" | "dev" | "ino" | "linkTarget">;
const STATE_COLUMNS = "path, kind, size, mtime_ms AS mtimeMs, mode, dev, ino, link_target AS linkTarget";

/** An archived file the walk did not meet. */
export interface UnseenFile {
  readonly path: string;
  readonly hash: string;
  readonly size: number;
  readonly diskId: string;
}

/** Archived files of some disks not marked seen: at a path, between two paths (exclusive), among listed paths. */
export interface UnseenQueries {
  at(path: string): UnseenFile[];
  between(after: string, before: string): UnseenFile[];
  among(paths: readonly string[]): UnseenFile[];
}

/** The columns of a `HostFileRow`. */
const FILE_COLUMNS =
  "path, kind, size, mtime_ms AS mtimeMs, mtime_nsec AS mtimeNsec, mode, dev, ino, hash, link_target AS linkTarget, disk_id AS diskId, archived_at AS archivedAt";

/**
 * The host catalog's `files` rows: every archived path and the disk that
 * holds it. Lookups a run makes per file are prepared once per catalog;
 * the others go through bun:sqlite's statement cache (`query`), which
 * prepares each once per connection too.
 */
export class FilesTable {
  readonly #sqlite: Database;
  readonly #byPath: Statement;
  readonly #byInode: Statement;
  readonly #sizeExists: Statement;
  readonly #diskAndHash: Statement;
  /** The differ's window of rows, by rows per window (one size per run). */
  readonly #statesFrom = new Map<number, Statement>();
  #markSeen: Statement | undefined;
  #rowWrites: { upsert: Statement; delete: Statement; setInode: Statement } | undefined;
  #symlinksOfInode: Statement | undefined;
  #holders: ContentHolders<{ path: string; diskId: string }> | undefined;

  constructor(sqlite: Database) {
    this.#sqlite = sqlite;
    this.#byPath = sqlite.prepare(`SELECT ${FILE_COLUMNS} FROM main.files WHERE path = ?`);
    this.#byInode = sqlite.prepare(`SELECT ${FILE_COLUMNS} FROM main.files WHERE dev = ? AND ino = ? LIMIT 16`);
    // "size >= 1048576" lets SQLite use the partial index on large sizes.
    this.#sizeExists = sqlite.prepare("SELECT 1 FROM main.files WHERE size = ?1 AND size >= 1048576 AND kind = 'file' LIMIT 1");
    this.#diskAndHash = sqlite.prepare("SELECT disk_id AS diskId, hash FROM main.files WHERE path = ?");
  }

  byPath(path: string): HostFileRow | undefined {
    return (this.#byPath.get(path) as HostFileRow | null) ?? undefined;
  }

  /** The disk holding `path` and its content hash (a lookup per change of a multi-disk run). */
  diskAndHashOf(path: string): { diskId: string; hash: string } | undefined {
    return (this.#diskAndHash.get(path) as { diskId: string; hash: string } | null) ?? undefined;
  }

  /** Other archived names of a source symlink (same device, inode and target; through the inode index): hardlinks of it. */
  symlinksOfInode(record: Pick<FileRecord, "dev" | "ino" | "linkTarget" | "path">): string[] {
    this.#symlinksOfInode ??= this.#sqlite.prepare(`SELECT path FROM main.files WHERE dev = ? AND ino = ? AND kind = 'symlink' AND link_target IS ? AND path != ? LIMIT 8`);
    return (this.#symlinksOfInode.values(record.dev, record.ino, record.linkTarget, record.path) as [string][]).map((row) => row[0]);
  }

  get #contentHolders(): ContentHolders<{ path: string; diskId: string }> {
    this.#holders ??= new ContentHolders(this.#sqlite, {
      from: "main.files",
      columns: ["path", "disk_id"],
      // IN, not a JOIN: the same plan on paper, but the JOIN costs 15 µs a call here against 1 µs.
      where: "disk_id IN (SELECT id FROM main.disks WHERE state != 'retired')",
      toHolder: (values) => ({ path: values[0] as string, diskId: values[1] as string }),
    });
    return this.#holders;
  }

  /** Paths anywhere in the archive (disks not retired) holding the content, with their disk, alike first (see ContentHolders). */
  holdersOf(content: Content): Held<{ path: string; diskId: string }>[] {
    return this.#contentHolders.of(content);
  }

  /** The same for every content of a batch at once, by contentKey (absent: none). */
  holdersOfEach(contents: readonly Content[]): Map<string, Held<{ path: string; diskId: string }>[]> {
    return this.#contentHolders.lookup(contents);
  }

  byInode(dev: number, ino: number): HostFileRow[] {
    return this.#byInode.all(dev, ino) as HostFileRow[];
  }

  /**
   * The differ's states of up to `rows` archived paths from `from` on, in path
   * order: a window of its merge join with the walk (see SeenPaths).
   */
  statesFrom(from: string, rows: number): ArchivedState[] {
    let statement = this.#statesFrom.get(rows);
    if (!statement) {
      statement = this.#sqlite.prepare(`SELECT ${STATE_COLUMNS} FROM main.files WHERE path >= ? ORDER BY path LIMIT ${rows}`);
      this.#statesFrom.set(rows, statement);
    }
    return statement.all(from) as ArchivedState[];
  }

  /** A run's seen marks start empty (temp.seen, this connection's alone: for walks that leave path order). */
  startMarkingSeen(): void {
    this.#sqlite.exec("CREATE TEMP TABLE IF NOT EXISTS seen (path TEXT PRIMARY KEY) WITHOUT ROWID");
    this.#sqlite.exec("DELETE FROM temp.seen");
    this.#markSeen ??= this.#sqlite.prepare("INSERT OR IGNORE INTO temp.seen (path) SELECT value FROM json_each(?)");
  }

  /** Marks paths seen (after startMarkingSeen). */
  markSeen(paths: readonly string[]): void {
    this.#markSeen!.run(JSON.stringify(paths));
  }

  /** Queries for the archived files of disks `diskIds` that a walk did not visit (`exceptMarked`: nor mark seen). */
  unseenOn(diskIds: readonly string[], options: { readonly exceptMarked: boolean }): UnseenQueries {
    const notSeen = options.exceptMarked ? "AND path NOT IN (SELECT path FROM temp.seen)" : "";
    const columns = "path, hash, size, disk_id AS diskId FROM main.files";
    const onDisks = "disk_id IN (SELECT value FROM json_each(?1))";
    const inRange = this.#sqlite.prepare(`SELECT ${columns} WHERE path > ?2 AND path < ?3 AND ${onDisks} ${notSeen}`);
    const atPath = this.#sqlite.prepare(`SELECT ${columns} WHERE path = ?2 AND ${onDisks} ${notSeen}`);
    const inList = this.#sqlite.prepare(`SELECT ${columns} WHERE path IN (SELECT value FROM json_each(?2)) AND ${onDisks} ${notSeen}`);
    const disks = JSON.stringify(diskIds);
    return {
      at: (path) => atPath.all(disks, path) as UnseenFile[],
      between: (after, before) => inRange.all(disks, after, before) as UnseenFile[],
      among: (paths) => inList.all(disks, JSON.stringify(paths)) as UnseenFile[],
    };
  }

  /** Up to 16 files of this size and mtime (renames on file systems whose inodes do not last). */
  bySizeAndMtime(size: number, mtimeMs: number): HostFileRow[] {
    return this.#sqlite.query(`SELECT ${FILE_COLUMNS} FROM main.files WHERE size = ? AND mtime_ms = ? LIMIT 16`).all(size, mtimeMs) as HostFileRow[];
  }

  /** Whether the archive holds any file of source device `dev` (through the inode index). */
  anyOnDevice(dev: number): boolean {
    return this.#sqlite.query("SELECT 1 FROM main.files WHERE dev = ? LIMIT 1").get(dev) !== null;
  }

  /** Whether the archive holds any file at all. */
  any(): boolean {
    return this.#sqlite.query("SELECT 1 FROM main.files LIMIT 1").get() !== null;
  }

  /** Whether any archived file of 1 MiB or more has this size: only then can new large content be a duplicate. */
  anyOfLargeSize(size: number): boolean {
    return this.#sizeExists.get(size) !== null;
  }

  count(): number {
    return (this.#sqlite.query("SELECT count(*) AS n FROM main.files").get() as { n: number }).n;
  }

  /** Files and their bytes, over the whole archive. */
  totals(): { files: number; bytes: number } {
    return this.#sqlite.query("SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM main.files").get() as { files: number; bytes: number };
  }

  /** Every archived file, in path order (the order of SQLite's BINARY collation). */
  all(): Iterable<HostFileRow> {
    return this.#sqlite.query(`SELECT ${FILE_COLUMNS} FROM main.files ORDER BY path`).iterate() as Iterable<HostFileRow>;
  }

  /** The file at `path` and every file under `under` (`path` + "/"), in path order. */
  atOrUnder(path: string, under: string): Iterable<HostFileRow> {
    return this.#sqlite.query(`SELECT ${FILE_COLUMNS} FROM main.files WHERE path = ?1 OR substr(path, 1, length(?2)) = ?2 ORDER BY path`).iterate(path, under) as Iterable<HostFileRow>;
  }

  /** Whether a file is archived at `path` or under `under`. */
  anyAtOrUnder(path: string, under: string): boolean {
    return this.#sqlite.query("SELECT 1 FROM main.files WHERE path = ?1 OR substr(path, 1, length(?2)) = ?2 LIMIT 1").get(path, under) !== null;
  }

  /** The files disk `diskId` holds, in path order. */
  ofDisk(diskId: string): HostFileRow[] {
    return this.#sqlite.query(`SELECT ${FILE_COLUMNS} FROM main.files WHERE disk_id = ? ORDER BY path`).all(diskId) as HostFileRow[];
  }

  /** How many files disk `diskId` holds. */
  countOnDisk(diskId: string): number {
    return (this.#sqlite.query("SELECT count(*) AS n FROM main.files WHERE disk_id = ?").get(diskId) as { n: number }).n;
  }

  /** Up to `limit` files of disk `diskId`, in no order (a sample to look for on a directory). */
  sampleOfDisk(diskId: string, limit: number): { path: string; size: number; kind: string }[] {
    return this.#sqlite.query("SELECT path, size, kind FROM main.files WHERE disk_id = ?1 LIMIT ?2").all(diskId, limit) as { path: string; size: number; kind: string }[];
  }

  /** Up to 4 other archived paths of a content (its data may have moved in the sources). */
  otherPathsOfContent(record: Pick<FileRecord, "hash" | "size" | "path">): string[] {
    return (
      this.#sqlite.query(`SELECT path FROM main.files WHERE ${sameHash("hash", "?1")} AND size = ?2 AND path != ?3 LIMIT 4`).all(record.hash, record.size, record.path) as {
        path: string;
      }[]
    ).map((row) => row.path);
  }

  /** Source inodes archived under more than one path (hardlinks in the sources), as "dev:ino". */
  sharedInodes(): Set<string> {
    return new Set(
      (this.#sqlite.query("SELECT dev || ':' || ino AS key FROM main.files GROUP BY dev, ino HAVING count(*) > 1").all() as { key: string }[]).map((row) => row.key),
    );
  }

  /** Drops every file of disk `diskId` from the archive (a retired disk). */
  deleteOfDisk(diskId: string): void {
    this.#sqlite.query("DELETE FROM main.files WHERE disk_id = ?").run(diskId);
  }

  /** The writers' statements, run per change of every commit: prepared once per catalog. */
  get #writes(): { upsert: Statement; delete: Statement; setInode: Statement } {
    return (this.#rowWrites ??= {
      upsert: this.#sqlite.prepare(
        `INSERT INTO main.files (path, kind, size, mtime_ms, mtime_nsec, mode, dev, ino, hash, link_target, disk_id, archived_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(path) DO UPDATE SET kind = excluded.kind, size = excluded.size, mtime_ms = excluded.mtime_ms, mtime_nsec = excluded.mtime_nsec,
           mode = excluded.mode, dev = excluded.dev, ino = excluded.ino, hash = excluded.hash,
           link_target = excluded.link_target, disk_id = excluded.disk_id, archived_at = excluded.archived_at`,
      ),
      delete: this.#sqlite.prepare("DELETE FROM main.files WHERE path = ?"),
      setInode: this.#sqlite.prepare("UPDATE main.files SET dev = ?, ino = ? WHERE path = ?"),
    });
  }

  /**
   * Records `r` as held by disk `diskId`, replacing what the path held
   * before. A change of the archive goes through HostFiles, which queues it
   * for the disk's copies too; this is the row alone.
   */
  upsert(r: FileRecord, diskId: string, now: number): void {
    this.#writes.upsert.run(r.path, r.kind, r.size, r.mtimeMs, r.mtimeNsec ?? null, r.mode, r.dev, r.ino, r.hash, r.linkTarget, diskId, now);
  }

  /** Drops the row of `path` (the row alone: see upsert). */
  delete(path: string): void {
    this.#writes.delete.run(path);
  }

  /** The source device and inode of an unchanged path, found anew (see InodeRefresh). */
  setInode(path: string, dev: number, ino: number): void {
    this.#writes.setInode.run(dev, ino, path);
  }
}
