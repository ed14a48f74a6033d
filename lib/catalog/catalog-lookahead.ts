import type { Statement } from "bun:sqlite";
import type { ArchiveCatalog } from "./archive-catalog.ts";
import { comparePaths } from "./path-order.ts";
import type { HostFileRow } from "./records.ts";

/** Rows read at once: a few hundred KB, and one query per this many walked files. */
const WINDOW_ROWS = 1024;

/**
 * Looks archived paths up for a walk that visits them in path order (the
 * walker's order), reading the catalog ahead in windows instead of one
 * query per file: on an unchanged re-run the per-file lookups were most of
 * the run's time.
 *
 * A window read from P holds every archived path from P up to its last row
 * (up to the end when it came back short), so a path inside it that is not
 * in it is not archived. A walk that steps back (overlapping sources, a
 * script's own order) reads a fresh window, since rows it committed since
 * may lie ahead of the old one. Rows ahead of the walk are as they were
 * when read: the run's own commits only touch paths it has walked, except
 * the old path of a rename, which the walk does not normally meet again.
 */
export class CatalogLookahead {
  readonly #from: Statement;
  #rows = new Map<string, HostFileRow>();
  #start: string | undefined;
  #last: string | undefined;
  #complete = false;
  #previous: string | undefined;

  constructor(catalog: ArchiveCatalog) {
    this.#from = catalog.sqlite.prepare(`SELECT ${catalog.fileColumns} FROM main.files WHERE path >= ? ORDER BY path LIMIT ${WINDOW_ROWS}`);
  }

  get(path: string): HostFileRow | undefined {
    const steppedBack = this.#previous !== undefined && comparePaths(path, this.#previous) <= 0;
    this.#previous = path;
    if (!steppedBack && this.#covers(path)) return this.#rows.get(path);
    this.#read(path);
    return this.#rows.get(path);
  }

  #covers(path: string): boolean {
    if (this.#start === undefined || comparePaths(path, this.#start) < 0) return false;
    return this.#complete || (this.#last !== undefined && comparePaths(path, this.#last) <= 0);
  }

  #read(from: string): void {
    const rows = this.#from.all(from) as HostFileRow[];
    this.#rows = new Map(rows.map((row) => [row.path, row]));
    this.#start = from;
    this.#last = rows.length > 0 ? rows[rows.length - 1].path : undefined;
    this.#complete = rows.length < WINDOW_ROWS;
  }
}
