import { chmodSync, copyFileSync, existsSync, renameSync, rmSync, statSync } from "node:fs";
import type { Database, Statement } from "bun:sqlite";
import { BlaineError, ExitCode, shellWord } from "../../errors.ts";
import { hostCatalogAdvice } from "./catalog-errors.ts";
import { CatalogLock } from "../../catalog/lock.ts";
import { hostDrizzle, openCatalogDatabase, type HostDatabase } from "./open.ts";
import type { FileRecord, HostFileRow } from "./records.ts";

const FILE_COLUMNS =
  "path, kind, size, mtime_ms AS mtimeMs, mtime_nsec AS mtimeNsec, mode, dev, ino, hash, link_target AS linkTarget, disk_id AS diskId, archived_at AS archivedAt";

export interface OpenArchiveCatalogOptions {
  readonly readonly?: boolean;
  readonly create?: boolean;
  /** Take the single-writer lock (every command that writes does). */
  readonly lock?: boolean;
}

/**
 * The host catalog, opened for one command. Hot lookups are prepared
 * statements; everything else goes through drizzle (`db`).
 */
export class ArchiveCatalog {
  readonly path: string;
  readonly sqlite: Database;
  readonly readonly: boolean;
  #db: HostDatabase | undefined;
  #lock: CatalogLock | undefined;
  #byPath: Statement;
  #byInode: Statement;
  #sizeExists: Statement;
  /** Set when this is the reading copy of a catalog another command is writing: says so, for people. */
  readingCopyNote: string | undefined;

  private constructor(path: string, sqlite: Database, readonly: boolean, lock: CatalogLock | undefined) {
    this.path = path;
    this.sqlite = sqlite;
    this.readonly = readonly;
    this.#lock = lock;
    this.#byPath = sqlite.prepare(`SELECT ${FILE_COLUMNS} FROM main.files WHERE path = ?`);
    this.#byInode = sqlite.prepare(`SELECT ${FILE_COLUMNS} FROM main.files WHERE dev = ? AND ino = ? LIMIT 16`);
    // "size >= 1048576" lets SQLite use the partial index on large sizes.
    this.#sizeExists = sqlite.prepare("SELECT 1 FROM main.files WHERE size = ?1 AND size >= 1048576 AND kind = 'file' LIMIT 1");
  }

  /** Whether this connection holds the single-writer lock (and SQLite's exclusive lock): no other process writes the file meanwhile. */
  get holdsWriterLock(): boolean {
    return this.#lock !== undefined;
  }

  /** drizzle over the same connection, made on first use (see hostDrizzle). */
  get db(): HostDatabase {
    return (this.#db ??= hostDrizzle(this.sqlite));
  }

  static open(path: string, options: OpenArchiveCatalogOptions = {}): ArchiveCatalog {
    // Said before the lock, whose file would otherwise be the first thing to fail.
    if (!options.create && !existsSync(path)) {
      throw new BlaineError(
        `host catalog ${path} does not exist (give --db the catalog of your archive; "blaine disk init" creates one, ` +
          `and "blaine catalog rebuild --db ${shellWord(path)} DISK-DIR…" brings a lost one back from the copies on its disks)`,
        ExitCode.usage,
      );
    }
    // An empty file where a catalog should be is a lost catalog: never the start of a new archive.
    if (existsSync(path) && statSync(path).size === 0) {
      throw new BlaineError(
        `host catalog ${path} is empty (0 bytes): lost or damaged, not new. Rebuild it from the copies on your archive disks with ` +
          `"blaine catalog rebuild --db NEW-FILE DISK-DIR…" and use NEW-FILE from then on; to start a new archive instead, delete it first`,
      );
    }
    if (options.readonly) {
      const reading = ArchiveCatalog.#openReadingCopy(path);
      if (reading) return reading;
    }
    const isNew = !existsSync(path);
    // The lock comes first: a migration is a write too.
    const lock = options.lock && !options.readonly ? CatalogLock.acquire(path) : undefined;
    try {
      const sqlite = openCatalogDatabase(path, "host", { ...options, exclusive: Boolean(lock), advice: hostCatalogAdvice(path) });
      // The file list of an encrypted archive is nobody else's business (as key files).
      if (isNew) chmodSync(path, 0o600);
      const catalog = new ArchiveCatalog(path, sqlite, options.readonly ?? false, lock);
      if (lock) catalog.#leaveReadingCopy();
      return catalog;
    } catch (error) {
      lock?.release();
      throw error;
    }
  }

  /** Where a writer leaves the catalog as it was when it began, for readers while it runs. */
  static readingCopyPath(path: string): string {
    return `${path}.reading-copy`;
  }

  /**
   * A writer holds SQLite's lock for its whole run (see OpenCatalogOptions.exclusive):
   * readers would wait and fail as busy. It leaves a copy of the catalog as
   * it was when it began (between transactions the file itself is the
   * consistent catalog), which readers open instead while it runs.
   */
  #leaveReadingCopy(): void {
    const copy = ArchiveCatalog.readingCopyPath(this.path);
    const temp = `${copy}.tmp`;
    try {
      copyFileSync(this.path, temp);
      chmodSync(temp, 0o600);
      renameSync(temp, copy);
    } catch {
      // Only readers lose: they wait for the writer as before.
      rmSync(temp, { force: true });
    }
  }

  /** The reading copy of a catalog another live command is writing, opened read-only; undefined when there is none. */
  static #openReadingCopy(path: string): ArchiveCatalog | undefined {
    const writer = CatalogLock.liveHolder(path);
    const copy = ArchiveCatalog.readingCopyPath(path);
    if (writer === undefined || !existsSync(copy)) return undefined;
    try {
      const asOf = statSync(copy).mtime.toISOString();
      const sqlite = openCatalogDatabase(copy, "host", { readonly: true, name: `host catalog ${path} (as it was at ${asOf})` });
      const catalog = new ArchiveCatalog(path, sqlite, true, undefined);
      catalog.readingCopyNote = `blaine (pid ${writer}) is writing host catalog ${path}: shown as it was when that command began (${asOf})`;
      return catalog;
    } catch {
      // Gone as the writer finished: read the catalog itself.
      return undefined;
    }
  }

  /** The archive this catalog describes, created on first use. */
  archiveId(create = false): string | undefined {
    const row = this.sqlite.query("SELECT id FROM archive LIMIT 1").get() as { id: string } | null;
    if (row) return row.id;
    if (!create) return undefined;
    const id = crypto.randomUUID();
    this.sqlite.query("INSERT INTO archive (id, created_at) VALUES (?, ?)").run(id, Date.now());
    return id;
  }

  requireArchiveId(): string {
    const id = this.archiveId();
    if (!id) {
      throw new BlaineError(
        `catalog ${this.path} holds no archive: run "blaine disk init" for a new one; if it held your archive, it is damaged: ${hostCatalogAdvice(this.path)}`,
        ExitCode.usage,
      );
    }
    return id;
  }

  /** The columns of a `HostFileRow`, for queries of other modules. */
  get fileColumns(): string {
    return FILE_COLUMNS;
  }

  fileByPath(path: string): HostFileRow | undefined {
    return (this.#byPath.get(path) as HostFileRow | null) ?? undefined;
  }

  filesByInode(dev: number, ino: number): HostFileRow[] {
    return this.#byInode.all(dev, ino) as HostFileRow[];
  }

  /** Whether the archive holds any file of source device `dev` (through the inode index). */
  hasFilesOnDevice(dev: number): boolean {
    return this.sqlite.query("SELECT 1 FROM main.files WHERE dev = ? LIMIT 1").get(dev) !== null;
  }

  /** Whether the archive holds any file at all. */
  hasFiles(): boolean {
    return this.sqlite.query("SELECT 1 FROM main.files LIMIT 1").get() !== null;
  }

  /** Whether any archived file of 1 MiB or more has this size: only then can new large content be a duplicate. */
  hasContentOfSize(size: number): boolean {
    return this.#sizeExists.get(size) !== null;
  }

  countFiles(): number {
    return (this.sqlite.query("SELECT count(*) AS n FROM main.files").get() as { n: number }).n;
  }

  /** Attaches a disk catalog under `alias` so one transaction can cover both. */
  attach(alias: string, diskCatalogPath: string): void {
    this.sqlite.query(`ATTACH DATABASE ? AS ${alias}`).run(diskCatalogPath);
  }

  detach(alias: string): void {
    this.sqlite.exec(`DETACH DATABASE ${alias}`);
  }

  transaction<T>(fn: () => T): T {
    return this.sqlite.transaction(fn)();
  }

  /**
   * A transaction whose rows reference only disks and copies read from this
   * catalog by this command (a mounted disk is checked against it when it is
   * opened): SQLite's foreign-key check, a lookup per row and about a third
   * of the cost of a file row, is left out for it. Every other write keeps it.
   */
  transactionOfCheckedRows<T>(fn: () => T): T {
    this.sqlite.exec("PRAGMA foreign_keys = OFF");
    try {
      return this.sqlite.transaction(fn)();
    } finally {
      this.sqlite.exec("PRAGMA foreign_keys = ON");
    }
  }

  close(): void {
    try {
      // A statement left unfinalized (drizzle's migrator leaves some) keeps the
      // connection alive past close, and with it an EXCLUSIVE lock that shuts
      // out every other process: hand the lock back first (it goes at the
      // next read once the mode is NORMAL).
      if (this.#lock) {
        this.sqlite.exec("PRAGMA locking_mode = NORMAL");
        this.sqlite.query("SELECT 1 FROM sqlite_master LIMIT 1").get();
      }
      this.sqlite.close();
    } finally {
      if (this.#lock) rmSync(ArchiveCatalog.readingCopyPath(this.path), { force: true });
      this.#lock?.release();
    }
  }
}

export function toRecord(row: FileRecord): FileRecord {
  return {
    path: row.path,
    kind: row.kind,
    size: row.size,
    mtimeMs: row.mtimeMs,
    mtimeNsec: row.mtimeNsec ?? null,
    mode: row.mode,
    dev: row.dev,
    ino: row.ino,
    hash: row.hash,
    linkTarget: row.linkTarget,
  };
}
