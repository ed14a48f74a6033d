import type { Database, Statement } from "bun:sqlite";

/** A content: its hash and size (the dedup key everywhere). */
export interface Content {
  readonly hash: string;
  readonly size: number;
}

export const contentKey = (hash: string, size: number): string => `${hash}/${size}`;

/**
 * The SQL test "`column` holds hash `value`", written so that SQLite finds
 * the rows through the hash-tail index (substr(hash, -16): see
 * host-schema.ts); a query that compares hashes any other way scans.
 */
export function sameHash(column: string, value: string): string {
  return `substr(${column}, -16) = substr(${value}, -16) AND ${column} = ${value}`;
}

/** Most holders returned per content: enough to find one still there after a batch's own changes. */
const HOLDERS_PER_CONTENT = 8;

/**
 * Finds who holds each content of a whole batch in one statement: the
 * contents go in as one JSON array and SQLite probes the (hash, size) index
 * once per content. A query per file cost more than the copy of a small
 * file; this is about a microsecond per content.
 *
 * `from` is a table with `path`, `hash`, `size` and `kind` columns; `columns`
 * what to return per holder (an SQL json_array(...) of row values).
 */
export class ContentHolders<Holder> {
  readonly #statement: Statement;
  readonly #ofOne: Statement;
  readonly #toHolder: (values: unknown[]) => Holder;

  constructor(db: Database, options: { from: string; columns: string[]; where?: string; toHolder: (values: unknown[]) => Holder }) {
    const holderFilter = options.where ? ` AND ${options.where}` : "";
    /** Row `h` holds the content whose hash and size are these SQL expressions. */
    const holdsContent = (hash: string, size: string) => `${sameHash("h.hash", hash)} AND h.size = ${size} AND h.kind = 'file'${holderFilter}`;
    this.#ofOne = db.prepare(
      `SELECT ${options.columns.join(", ")} FROM ${options.from} h WHERE ${holdsContent("?1", "?2")} LIMIT ${HOLDERS_PER_CONTENT}`,
    );
    const holds = holdsContent("k.value->>0", "k.value->>1");
    // Most contents of a batch are new: the EXISTS probe drops them before
    // any JSON is built (half the cost of a batch of new files; a batch of
    // known contents pays a third more).
    this.#statement = db.prepare(
      `SELECT k.key AS i, (SELECT json_group_array(json_array(${options.columns.join(", ")})) FROM (
         SELECT ${options.columns.join(", ")} FROM ${options.from} h WHERE ${holds} LIMIT ${HOLDERS_PER_CONTENT})) AS holders
       FROM json_each(?) k WHERE EXISTS (SELECT 1 FROM ${options.from} h WHERE ${holds})`,
    );
    this.#toHolder = options.toHolder;
  }

  /** The holders of one content (a single lookup: no JSON either way). */
  of(hash: string, size: number): Holder[] {
    return (this.#ofOne.values(hash, size) as unknown[][]).map(this.#toHolder);
  }

  /** The holders of every content in `contents`, by contentKey; contents nobody holds are absent. */
  lookup(contents: readonly Content[]): Map<string, Holder[]> {
    const found = new Map<string, Holder[]>();
    if (contents.length === 0) return found;
    // A content listed twice is looked up twice (it costs less than building
    // a key per content to drop repeats: keys are built for holders only).
    const rows = this.#statement.all(JSON.stringify(contents.map((content) => [content.hash, content.size]))) as { i: number; holders: string }[];
    for (const row of rows) {
      const content = contents[row.i];
      const key = contentKey(content.hash, content.size);
      if (!found.has(key)) found.set(key, (JSON.parse(row.holders) as unknown[][]).map(this.#toHolder));
    }
    return found;
  }
}
