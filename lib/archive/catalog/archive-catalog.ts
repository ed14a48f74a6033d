import { chmodSync, copyFileSync, existsSync, renameSync, rmSync, statSync } from "node:fs";
import { Database } from "bun:sqlite";
import { BlaineError, ExitCode, shellWord } from "../../errors.ts";
import { hostCatalogAdvice } from "./catalog-errors.ts";
import { CatalogLock } from "../../catalog/lock.ts";
import { DisksTable } from "./disks-table.ts";
import { EntriesTable } from "./entries-table.ts";
import { FilesTable } from "./files-table.ts";
import { openCatalogDatabase } from "./open.ts";
import { ParitySetsTable } from "./parity-sets-table.ts";
import type { FileRecord } from "./records.ts";
import { RunsTable } from "./runs-table.ts";

export interface OpenArchiveCatalogOptions {
  readonly readonly?: boolean;
  readonly create?: boolean;
  /** Take the single-writer lock (every command that writes does). */
  readonly lock?: boolean;
}

/**
 * The host catalog, opened for one command: the connection (locks, attached
 * disk catalogs, transactions) and its tables. Every SQL statement is in a
 * table module of this folder, one per table group (files, disks and their
 * copies, runs, deferred actions; a disk catalog's entries and intents, its
 * parity sets; a run's temp tables in run-links.ts), as plain SQL over
 * bun:sqlite: statements that run per file are prepared once per catalog
 * (drizzle's prepared queries were measured slower there, and loading
 * drizzle costs more than a run with nothing to do: it stays the schema and
 * the migrator), the rest go through bun:sqlite's statement cache. Commands,
 * stages and run setup call their methods; `sqlite` is for those modules
 * alone (test/sql-owners.test.ts checks it).
 */
export class ArchiveCatalog {
  readonly path: string;
  readonly sqlite: Database;
  readonly readonly: boolean;
  /** The archived files (`files`). */
  readonly files: FilesTable;
  #disks: DisksTable | undefined;
  #runs: RunsTable | undefined;
  /** The tables of each attached disk catalog, by alias. */
  readonly #diskTables = new Map<string, { entries: EntriesTable; paritySets: ParitySetsTable }>();
  #lock: CatalogLock | undefined;
  /** Set when this is the reading copy of a catalog another command is writing: says so, for people. */
  readingCopyNote: string | undefined;

  private constructor(path: string, sqlite: Database, readonly: boolean, lock: CatalogLock | undefined) {
    this.path = path;
    this.sqlite = sqlite;
    this.readonly = readonly;
    this.#lock = lock;
    this.files = new FilesTable(sqlite);
  }

  /** The archive row, the disks and their copies (`archive`, `disks`, `disk_copies`). */
  get disks(): DisksTable {
    return (this.#disks ??= new DisksTable(this.sqlite));
  }

  /** The run records (`runs`). */
  get runs(): RunsTable {
    return (this.#runs ??= new RunsTable(this.sqlite));
  }

  /** The entries and intents of the disk catalog attached as `alias`. */
  entries(alias: string): EntriesTable {
    return this.#tablesOf(alias).entries;
  }

  /** The parity sets of the disk catalog attached as `alias`. */
  paritySets(alias: string): ParitySetsTable {
    return this.#tablesOf(alias).paritySets;
  }

  #tablesOf(alias: string): { entries: EntriesTable; paritySets: ParitySetsTable } {
    let tables = this.#diskTables.get(alias);
    if (!tables) {
      tables = { entries: new EntriesTable(this.sqlite, alias), paritySets: new ParitySetsTable(this.sqlite, alias) };
      this.#diskTables.set(alias, tables);
    }
    return tables;
  }

  /** Whether this connection holds the single-writer lock (and SQLite's exclusive lock): no other process writes the file meanwhile. */
  get holdsWriterLock(): boolean {
    return this.#lock !== undefined;
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
    const id = this.disks.archiveId();
    if (id !== undefined || !create) return id;
    return this.disks.createArchive();
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

  /** Attaches a disk catalog under `alias` so one transaction can cover both. */
  attach(alias: string, diskCatalogPath: string): void {
    this.sqlite.query(`ATTACH DATABASE ? AS ${alias}`).run(diskCatalogPath);
  }

  detach(alias: string): void {
    this.#diskTables.delete(alias);
    this.sqlite.exec(`DETACH DATABASE ${alias}`);
  }

  /** Whether a transaction is open on the connection. */
  get inTransaction(): boolean {
    return this.sqlite.inTransaction;
  }

  /** Writes a consistent snapshot of the catalog (not of attached disk catalogs) into the new file `target` (VACUUM INTO). */
  writeSnapshot(target: string): void {
    this.sqlite.query("VACUUM main INTO ?").run(target);
  }

  /** Writes a consistent snapshot of the catalog file `path`, read as it is (no migration), into the new file `target`. */
  static writeSnapshotOf(path: string, target: string): void {
    const source = new Database(path, { readonly: true });
    try {
      source.query("VACUUM INTO ?").run(target);
    } finally {
      source.close();
    }
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
