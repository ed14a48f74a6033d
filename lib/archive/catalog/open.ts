import { Database } from "bun:sqlite";
import { existsSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { BlaineError, ExitCode, errorMessage } from "../../errors.ts";
import { appliedSqliteMigrations, applySqliteMigrations, missingMigrations } from "../../catalog/schema-version.ts";
import { noteCatalog } from "./catalog-errors.ts";

const MIGRATIONS = join(import.meta.dir, "migrations");

export type CatalogKind = "host" | "disk";

export interface OpenCatalogOptions {
  /** Open without writing anything: no migration, no creation. */
  readonly readonly?: boolean;
  /** Create the file when it does not exist (otherwise that is an error). */
  readonly create?: boolean;
  /** Hold SQLite's file lock until close (writers only; readers then wait or fail as busy). */
  readonly exclusive?: boolean;
  /** How errors name the file (default `<kind> catalog <path>`): a disk's catalog as the user knows the disk. */
  readonly name?: string;
  /** What to do about a missing, empty or unreadable file: appended to those errors. */
  readonly advice?: string;
}

/**
 * Opens a catalog file and brings its schema up to date with drizzle-kit's
 * migrations. An older catalog is upgraded in place; a newer one (written by
 * a later Blaine) or a file that is not a catalog is refused, never recreated.
 */
export function openCatalogDatabase(path: string, kind: CatalogKind, options: OpenCatalogOptions = {}): Database {
  const name = options.name ?? `${kind} catalog ${path}`;
  const advice = options.advice ? `; ${options.advice}` : "";
  if (!existsSync(path) && !options.create) {
    throw new BlaineError(`${name} does not exist${advice}`, options.advice ? ExitCode.failure : ExitCode.usage);
  }
  noteCatalog({ path, name, advice: options.advice });
  if (options.readonly) rollBackHotJournal(path, name);
  let sqlite: Database;
  try {
    sqlite = options.readonly ? new Database(path, { readonly: true }) : new Database(path, { create: true });
  } catch (error) {
    throw new BlaineError(`cannot open ${name}: ${errorMessage(error)}${advice}`, ExitCode.failure);
  }
  try {
    sqlite.exec("PRAGMA busy_timeout = 5000");
    if (!options.readonly) {
      // A rollback journal (not WAL) so that one transaction over the host
      // catalog and an attached disk catalog commits atomically in both.
      sqlite.exec("PRAGMA journal_mode = DELETE");
      sqlite.exec("PRAGMA synchronous = FULL");
      removeEmptyJournal(sqlite, path);
    }
    if (options.exclusive) {
      // A writer holds Blaine's own lock anyway; keeping SQLite's file lock
      // too spares two lock syscalls and a journal check on every statement
      // (about 8× faster lookups). Also applies to catalogs attached later.
      sqlite.exec("PRAGMA locking_mode = EXCLUSIVE");
    }
    // SQLite's default page cache (2 MB) makes lookups of a large catalog
    // reads from the OS; 16 MB (a ceiling, filled only as used) holds the
    // indexes' hot pages, and keeps a run over 200 000 files near 200 MB
    // (64 MB took it to 290 MB, for no faster run).
    sqlite.exec("PRAGMA cache_size = -16384");
    sqlite.exec("PRAGMA foreign_keys = ON");
    const pending = checkSchemaVersion(sqlite, { path, kind, name, advice, readonly: options.readonly ?? false, mayBeNew: Boolean(options.create) });
    if (!options.readonly && pending) applySqliteMigrations(sqlite, join(MIGRATIONS, kind));
    return sqlite;
  } catch (error) {
    sqlite.close();
    if (error instanceof BlaineError) throw error;
    if (isBusy(error)) throw busyError(name);
    throw new BlaineError(`${name} is damaged or not a Blaine catalog: ${errorMessage(error)}${advice}`);
  }
}

/** SQLite found the file locked by a live writer. */
function isBusy(error: unknown): boolean {
  return /database is locked/.test(errorMessage(error));
}

function busyError(name: string): BlaineError {
  return new BlaineError(`${name} is busy: another blaine command is writing it; try again when it has finished`);
}

/**
 * A rollback journal left by a killed writer ("hot") must be rolled back
 * before the file can be read, and a read-only connection may not: it
 * failed with "attempt to write a readonly database". A reader rolls it
 * back first through a read-write connection (SQLite does so only when no
 * live writer holds the file, which then answers busy).
 */
function rollBackHotJournal(path: string, name: string): void {
  const journal = `${path}-journal`;
  if (!existsSync(journal) || statSync(journal).size === 0) return;
  try {
    const sqlite = new Database(path, { readwrite: true, create: false });
    try {
      sqlite.exec("PRAGMA busy_timeout = 5000");
      sqlite.query("SELECT count(*) FROM sqlite_master").get();
    } finally {
      sqlite.close();
    }
  } catch (error) {
    if (isBusy(error)) throw busyError(name);
    throw new BlaineError(
      `${name} has a journal left by a killed command (${journal}) that must be rolled back before it can be read, and this command cannot (${errorMessage(error)}); ` +
        `run it as a user who may write the file, or run a writing command (blaine run) to settle it`,
    );
  }
}

/**
 * An empty journal (a writer killed as it began one) holds nothing to roll
 * back, and SQLite ignores it, but it stays beside the catalog until the
 * next write: removed here, under a write lock so that it cannot be the
 * journal a live writer has just begun.
 */
function removeEmptyJournal(sqlite: Database, path: string): void {
  const journal = `${path}-journal`;
  if (!existsSync(journal) || statSync(journal).size !== 0) return;
  sqlite.exec("BEGIN IMMEDIATE");
  try {
    if (existsSync(journal) && statSync(journal).size === 0) rmSync(journal, { force: true });
  } finally {
    sqlite.exec("COMMIT");
  }
}

/**
 * Refuses catalogs written by a newer Blaine, whose schema this one does not
 * know, and empty files (a 0-byte catalog is a lost one, not a new one,
 * unless the caller is creating it). Returns whether migrations are pending
 * (a new or older catalog).
 */
function checkSchemaVersion(
  sqlite: Database,
  file: { path: string; kind: CatalogKind; name: string; advice: string; readonly: boolean; mayBeNew: boolean },
): boolean {
  const { path, kind, name, readonly } = file;
  const applied = appliedSqliteMigrations(sqlite);
  if (!applied) {
    const anyTable = sqlite.query("SELECT name FROM sqlite_master WHERE type = 'table' LIMIT 1").get();
    if (anyTable) throw new BlaineError(`${path} is an SQLite file but not a Blaine ${kind} catalog`);
    if (readonly || !file.mayBeNew) throw new BlaineError(`${name} is empty (0 bytes, or no tables)${file.advice}`);
    return true;
  }
  const missing = missingMigrations(applied, join(MIGRATIONS, kind), name);
  if (readonly && missing > 0) {
    throw new BlaineError(
      `${name} is from an older version of Blaine; run any writing command (e.g. blaine run) to upgrade it`,
    );
  }
  return missing > 0;
}

/**
 * Opens a catalog file as openCatalogDatabase does and runs SQLite's
 * `PRAGMA integrity_check` on it: "ok" or the problems SQLite lists, in words.
 */
export function checkCatalogIntegrity(path: string, kind: CatalogKind, options: OpenCatalogOptions = {}): string {
  const sqlite = openCatalogDatabase(path, kind, options);
  try {
    const rows = sqlite.query("PRAGMA integrity_check").all() as { integrity_check: string }[];
    return rows.map((row) => row.integrity_check).join("; ");
  } finally {
    sqlite.close();
  }
}
