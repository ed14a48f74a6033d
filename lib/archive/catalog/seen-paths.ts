import type { ArchiveCatalog } from "./archive-catalog.ts";
import { childPrefix, comparePaths, isAtOrUnder } from "../../catalog/path-order.ts";
import type { ArchivedState, FilesTable, UnseenFile } from "./files-table.ts";

/** Rows read at once: a few hundred KB, and one query per this many walked files. */
const WINDOW_ROWS = 1024;
/** Paths per statement, where paths go to SQLite as one JSON array. */
const JSON_BATCH = 2000;

/** An exclusive range of paths; undefined is unbounded. */
type PathRange = readonly [after: string | undefined, before: string | undefined];

/**
 * The archived rows a walk meets, and after it the archived files it did
 * not meet: the deleted ones.
 *
 * The walker visits paths in the catalog's order, so the catalog is read
 * alongside it in windows of rows, a merge join: one query per thousand
 * files instead of one per file. A row the walk passes without visiting it
 * is noted as unseen. So is every row in a range no window covered: before
 * the first visited path, between two windows, and after the last visited
 * path. Afterwards `unseen` reads those rows again. A path the run itself
 * has since removed (the old name of a rename) is gone from the catalog by
 * then, and is not reported.
 *
 * If the walk steps back (overlapping sources, or a pipeline script's own
 * order), the merge join stops at the last path visited in order. From then
 * on each visited path goes into an SQLite temp table, which `unseen`
 * subtracts. That is slower, but it is right for any order. A tree of any
 * size costs bounded memory, plus one path per unseen file.
 */
export class SeenPaths {
  readonly #files: FilesTable;
  readonly #windowRows: number;
  #rows: ArchivedState[] = [];
  /** First row of the window the ordered walk has not yet gone by. */
  #next = 0;
  #windowStart: string | undefined;
  /** The window came back short: it holds every row from its start to the end. */
  #windowComplete = false;
  #firstInOrder: string | undefined;
  #lastInOrder: string | undefined;
  #ordered = true;
  /** Ranges between two windows of the ordered walk: none of their rows was visited. */
  readonly #gaps: PathRange[] = [];
  /** Rows of a window that the ordered walk went by without visiting them. */
  readonly #passed: string[] = [];
  /** After a step back: visited paths not yet in temp.seen, and the last visited path. */
  #pending: string[] = [];
  #previous: string | undefined;
  /** Whether visited paths go to temp.seen (after a step back). */
  #marking = false;
  /** Paths that exist but could not be read (and everything under them): never taken for deleted. */
  readonly #unreadable: string[] = [];

  /** @param windowRows Rows per window (tests use a few, so that every walk crosses many windows). */
  constructor(catalog: ArchiveCatalog, windowRows = WINDOW_ROWS) {
    this.#files = catalog.files;
    this.#windowRows = Math.max(1, Math.floor(windowRows));
  }

  /** The archived row at `path`, if any; and `path` counts as seen. */
  visit(path: string): ArchivedState | undefined {
    if (this.#ordered) {
      if (this.#lastInOrder === undefined || comparePaths(path, this.#lastInOrder) > 0) return this.#visitInOrder(path);
      this.#leaveOrder();
    }
    this.#pending.push(path);
    if (this.#pending.length >= JSON_BATCH) this.flush();
    return this.#find(path);
  }

  /**
   * `path` is there but could not be read (a directory without permission,
   * an I/O error): what the archive holds of it and under it is kept, since
   * a failing read is not a deletion.
   */
  keepUnreadable(path: string): void {
    this.#unreadable.push(path);
  }

  /** Writes visited paths still held in memory to temp.seen (only after a step back). */
  flush(): void {
    if (this.#pending.length === 0 || !this.#marking) return;
    const paths = this.#pending;
    this.#pending = [];
    this.#files.markSeen(paths);
  }

  /**
   * Archived files below `sources` (on the given disks) that the walk did not
   * visit, in path order: the deleted files. Call it after the walk has ended.
   */
  *unseen(sources: readonly string[], diskIds: readonly string[]): Generator<UnseenFile> {
    this.flush();
    const found = new Map<string, UnseenFile>();
    const unseen = this.#files.unseenOn(diskIds, { exceptMarked: this.#marking });
    const take = (rows: UnseenFile[]) => {
      for (const row of rows) found.set(row.path, row);
    };

    for (const source of sources) {
      const prefix = childPrefix(source);
      // Every path under the source sorts after its prefix and before the prefix with "/" bumped to "0".
      const end = `${prefix.slice(0, -1)}0`;
      for (const [after, before] of this.#unvisitedRanges()) {
        if (source !== prefix && within(source, after, before)) take(unseen.at(source));
        const from = after === undefined || comparePaths(after, prefix) < 0 ? prefix : after;
        const to = before === undefined || comparePaths(before, end) > 0 ? end : before;
        if (comparePaths(from, to) < 0) take(unseen.between(from, to));
      }
    }
    const passed = this.#passed.filter((path) => sources.some((source) => isAtOrUnder(path, source)));
    for (let start = 0; start < passed.length; start += JSON_BATCH) {
      take(unseen.among(passed.slice(start, start + JSON_BATCH)));
    }

    const files = [...found.values()].sort((a, b) => comparePaths(a.path, b.path));
    for (const file of files) {
      if (!this.#unreadable.some((kept) => isAtOrUnder(file.path, kept))) yield file;
    }
  }

  #visitInOrder(path: string): ArchivedState | undefined {
    if (this.#firstInOrder === undefined) {
      this.#firstInOrder = path;
      this.#read(path);
    } else if (!this.#windowComplete && comparePaths(path, this.#rows[this.#rows.length - 1].path) > 0) {
      // Past the window: the rest of it was gone by, and nothing between it and `path` was visited.
      for (let i = this.#next; i < this.#rows.length; i++) this.#passed.push(this.#rows[i].path);
      this.#gaps.push([this.#rows[this.#rows.length - 1].path, path]);
      this.#read(path);
    }
    this.#lastInOrder = path;
    const rows = this.#rows;
    let i = this.#next;
    // An unchanged tree visits every row: the equality test settles most visits without comparing.
    while (i < rows.length && rows[i].path !== path && comparePaths(rows[i].path, path) < 0) this.#passed.push(rows[i++].path);
    const row = i < rows.length && rows[i].path === path ? rows[i++] : undefined;
    this.#next = i;
    return row;
  }

  /** The walk stepped back: the merge join ends at the last path visited in order, temp.seen takes over. */
  #leaveOrder(): void {
    this.#ordered = false;
    this.#previous = this.#lastInOrder;
    this.#files.startMarkingSeen();
    this.#marking = true;
  }

  /** A lookup out of order: a step back reads a fresh window, since rows the run has committed since may lie in the old one. */
  #find(path: string): ArchivedState | undefined {
    const steppedBack = this.#previous !== undefined && comparePaths(path, this.#previous) <= 0;
    this.#previous = path;
    if (steppedBack || !this.#covers(path)) this.#read(path);
    let low = 0;
    let high = this.#rows.length - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const order = comparePaths(this.#rows[middle].path, path);
      if (order === 0) return this.#rows[middle];
      if (order < 0) low = middle + 1;
      else high = middle - 1;
    }
    return undefined;
  }

  #covers(path: string): boolean {
    if (this.#windowStart === undefined || comparePaths(path, this.#windowStart) < 0) return false;
    return this.#windowComplete || comparePaths(path, this.#rows[this.#rows.length - 1].path) <= 0;
  }

  #read(from: string): void {
    this.#rows = this.#files.statesFrom(from, this.#windowRows);
    this.#next = 0;
    this.#windowStart = from;
    this.#windowComplete = this.#rows.length < this.#windowRows;
  }

  /** The ranges no window of the ordered walk covered (all paths when it visited none). */
  #unvisitedRanges(): PathRange[] {
    if (this.#firstInOrder === undefined) return [[undefined, undefined]];
    return [[undefined, this.#firstInOrder], ...this.#gaps, [this.#lastInOrder, undefined]];
  }
}

function within(path: string, after: string | undefined, before: string | undefined): boolean {
  return (after === undefined || comparePaths(path, after) > 0) && (before === undefined || comparePaths(path, before) < 0);
}
