import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { BlaineError, ExitCode, errorMessage } from "../../errors.ts";

/**
 * SQLite's own words for a failing catalog ("database disk image is
 * malformed", "database is locked") name no file. A statement can fail long
 * after its catalog was opened, and several are open at once (the host
 * catalog and each disk's, attached): every catalog a command opens is
 * noted here, so that such an error can be told again naming the file at
 * fault and what to do about it.
 */
export interface NotedCatalog {
  readonly path: string;
  /** How the user knows it (see openCatalogDatabase's `name`). */
  readonly name: string;
  /** What to do when it is lost or damaged. */
  readonly advice: string | undefined;
}

const noted = new Map<string, NotedCatalog>();

export function noteCatalog(catalog: NotedCatalog): void {
  noted.set(catalog.path, catalog);
}

/** What to do about a lost or damaged host catalog at `path`. */
export function hostCatalogAdvice(path: string): string {
  return `rebuild it from the copies on your archive disks with "blaine catalog rebuild --db NEW-FILE DISK-DIR…" and use NEW-FILE from then on (keep ${path} aside)`;
}

/** The SQLite result code of an error from bun:sqlite (`SQLITE_CORRUPT`, `SQLITE_BUSY_…`), if it is one. */
export function sqliteCode(error: unknown): string | undefined {
  if (!(error instanceof Error) || error.name !== "SQLiteError") return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" ? code : undefined;
}

/**
 * An SQLite error of a catalog retold for people: which catalog, and what
 * to do. Undefined for any other error. Called once the command's
 * connections are closed (it opens each noted catalog to find the one at fault).
 */
export function explainCatalogError(error: unknown): BlaineError | undefined {
  const code = sqliteCode(error);
  if (!code) return undefined;
  const catalogs = [...noted.values()];
  const said = errorMessage(error);
  const names = (list: readonly NotedCatalog[]) => list.map((catalog) => catalog.name).join(", ");
  if (code.startsWith("SQLITE_CORRUPT") || code.startsWith("SQLITE_NOTADB")) {
    const damaged = catalogs.filter((catalog) => !passesQuickCheck(catalog.path));
    if (damaged.length === 0) return new BlaineError(`a catalog is damaged (${said}); one of ${names(catalogs) || "the catalogs"} (see blaine doctor)`);
    return new BlaineError(damaged.map((catalog) => `${catalog.name} is damaged (${said})${catalog.advice ? `; ${catalog.advice}` : ""}`).join("\n"));
  }
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) {
    // The one still held by the other process, when it is still running; else any of them.
    const locked = catalogs.filter((catalog) => isLockedNow(catalog.path));
    const list = locked.length > 0 ? locked : catalogs;
    return new BlaineError(
      `${names(list) || "a catalog"}: locked by another process (${said}). Another blaine command is using ${list.length === 1 ? "it" : "one of them"}, ` +
        `perhaps through another copy of the host catalog (one disk must only ever be written through one host catalog). Try again when the other command has finished.`,
    );
  }
  if (code.startsWith("SQLITE_READONLY") || code.startsWith("SQLITE_CANTOPEN") || code.startsWith("SQLITE_IOERR") || code.startsWith("SQLITE_FULL")) {
    return new BlaineError(`${names(catalogs) || "a catalog"}: ${said}${code.startsWith("SQLITE_FULL") ? " (no space left for the catalog)" : " (check that the file and its directory are writable and the disk is healthy)"}`);
  }
  return new BlaineError(`${names(catalogs) || "a catalog"}: ${said}`);
}

/** Whether another process holds a lock on the file now (this process has closed its own connections). */
function isLockedNow(path: string): boolean {
  if (!existsSync(path)) return false;
  try {
    const sqlite = new Database(path, { readwrite: true, create: false });
    try {
      sqlite.exec("PRAGMA busy_timeout = 0");
      sqlite.exec("BEGIN IMMEDIATE");
      sqlite.exec("ROLLBACK");
      return false;
    } finally {
      sqlite.close();
    }
  } catch (error) {
    return sqliteCode(error)?.startsWith("SQLITE_BUSY") ?? false;
  }
}

function passesQuickCheck(path: string): boolean {
  if (!existsSync(path)) return true;
  try {
    const sqlite = new Database(path, { readonly: true });
    try {
      const rows = sqlite.query("PRAGMA quick_check").all() as { quick_check: string }[];
      return rows.length === 1 && rows[0].quick_check === "ok";
    } finally {
      sqlite.close();
    }
  } catch (error) {
    // A journal a reader may not roll back is no damage (see openCatalogDatabase).
    return sqliteCode(error)?.startsWith("SQLITE_READONLY") ?? false;
  }
}
