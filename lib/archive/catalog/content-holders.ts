import type { Database, Statement } from "bun:sqlite";

/**
 * A content as a file on a disk shows it: its bytes (hash and size) and the
 * metadata every hardlink of that file shares (mtime and mode; the owner is
 * the same for every file Blaine writes). The dedup key everywhere. A
 * hardlink is made to a holder showing the same ("alike"), so the disk
 * stays a plain mirror (read with `cp -a`, each file has its own source's
 * mtime); one showing other metadata only where no copy fits (see Planner.linkWhenNoRoom).
 */
export interface Content {
  readonly hash: string;
  readonly size: number;
  readonly mtimeMs: number;
  /** The mtime's nanoseconds, exact (see exact-mtime.ts); null or absent when unknown. */
  readonly mtimeNsec?: number | null;
  readonly mode: number;
}

/**
 * The content's mtime as SQL compares it with a row's: whole milliseconds
 * and the exact nanoseconds (together exact, and integers: a JSON number
 * read back by SQLite need not be the same double).
 */
const wholeMs = (content: Content): number => Math.trunc(content.mtimeMs);

export const contentKey = (content: Content): string => `${content.hash}/${content.size}/${wholeMs(content)}/${content.mtimeNsec ?? ""}/${content.mode}`;

/**
 * The SQL test "`column` holds hash `value`", written so that SQLite finds
 * the rows through the hash-tail index (substr(hash, -16): see
 * host-schema.ts); a query that compares hashes any other way scans.
 */
export function sameHash(column: string, value: string): string {
  return `substr(${column}, -16) = substr(${value}, -16) AND ${column} = ${value}`;
}

/** Whether two files of one content would show the same on the disk (size, mtime to the nanosecond, mode): then they may share an inode. */
export function showsAlike(a: Content, b: Content): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && (a.mtimeNsec ?? null) === (b.mtimeNsec ?? null) && a.mode === b.mode;
}

/** A path holding a content, and whether its file shows the asked content's metadata too. */
export interface Held<Holder> {
  readonly holder: Holder;
  readonly alike: boolean;
}

/** Most holders returned per content: enough to find one still there after a batch's own changes. */
const HOLDERS_PER_CONTENT = 8;

/**
 * Finds who holds each content of a whole batch in one statement: the
 * contents go in as one JSON array and SQLite probes the (hash, size) index
 * once per content. A query per file cost more than the copy of a small
 * file; this is about a microsecond per content.
 *
 * `from` is a table with `path`, `hash`, `size`, `kind`, `mtime_ms`,
 * `mtime_nsec` and `mode` columns; `columns` what to return per holder (an
 * SQL json_array(...) of row values). Holders showing the asked metadata
 * come first, flagged `alike`.
 */
export class ContentHolders<Holder> {
  readonly #statement: Statement;
  readonly #ofOne: Statement;
  readonly #toHolder: (values: unknown[]) => Holder;

  constructor(db: Database, options: { from: string; columns: string[]; where?: string; toHolder: (values: unknown[]) => Holder }) {
    const holderFilter = options.where ? ` AND ${options.where}` : "";
    /** Row `h` holds the content whose hash and size are these SQL expressions. */
    const holdsContent = (hash: string, size: string) => `${sameHash("h.hash", hash)} AND h.size = ${size} AND h.kind = 'file'${holderFilter}`;
    /** Row `h` shows this whole-ms mtime, nanoseconds and mode (integers all: see wholeMs). */
    const alike = (ms: string, nsec: string, mode: string) => `(CAST(h.mtime_ms AS INTEGER) = ${ms} AND h.mtime_nsec IS ${nsec} AND h.mode = ${mode}) AS alike`;
    const columns = [...options.columns, "alike"].join(", ");
    this.#ofOne = db.prepare(
      `SELECT ${columns} FROM (SELECT ${options.columns.join(", ")}, ${alike("?3", "?4", "?5")} FROM ${options.from} h
         WHERE ${holdsContent("?1", "?2")} ORDER BY alike DESC LIMIT ${HOLDERS_PER_CONTENT})`,
    );
    const holds = holdsContent("k.value->>0", "k.value->>1");
    // Most contents of a batch are new: the EXISTS probe drops them before
    // any JSON is built (half the cost of a batch of new files; a batch of
    // known contents pays a third more).
    this.#statement = db.prepare(
      `SELECT k.key AS i, (SELECT json_group_array(json_array(${columns})) FROM (
         SELECT ${options.columns.join(", ")}, ${alike("k.value->>2", "k.value->>3", "k.value->>4")} FROM ${options.from} h
         WHERE ${holds} ORDER BY alike DESC LIMIT ${HOLDERS_PER_CONTENT})) AS holders
       FROM json_each(?) k WHERE EXISTS (SELECT 1 FROM ${options.from} h WHERE ${holds})`,
    );
    this.#toHolder = options.toHolder;
  }

  /** A row's values (the caller's columns, then the alike flag) as a Held. */
  readonly #held = (values: unknown[]): Held<Holder> => ({ holder: this.#toHolder(values), alike: values[values.length - 1] === 1 });

  /** The holders of one content, those alike first (a single lookup: no JSON either way). */
  of(content: Content): Held<Holder>[] {
    return (this.#ofOne.values(content.hash, content.size, wholeMs(content), content.mtimeNsec ?? null, content.mode) as unknown[][]).map(this.#held);
  }

  /** The holders of every content in `contents` (alike first), by contentKey; contents nobody holds are absent. */
  lookup(contents: readonly Content[]): Map<string, Held<Holder>[]> {
    const found = new Map<string, Held<Holder>[]>();
    if (contents.length === 0) return found;
    // A content listed twice is looked up twice (it costs less than building
    // a key per content to drop repeats: keys are built for holders only).
    const rows = this.#statement.all(JSON.stringify(contents.map((content) => [content.hash, content.size, wholeMs(content), content.mtimeNsec ?? null, content.mode]))) as { i: number; holders: string }[];
    for (const row of rows) {
      const content = contents[row.i];
      const key = contentKey(content);
      if (!found.has(key)) found.set(key, (JSON.parse(row.holders) as unknown[][]).map(this.#held));
    }
    return found;
  }
}
