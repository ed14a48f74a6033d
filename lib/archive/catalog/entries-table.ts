import type { Database, Statement } from "bun:sqlite";
import { ContentHolders, sameHash, type Content } from "./content-holders.ts";
import type { FileRecord } from "./records.ts";

/** A disk catalog's row of one path: what the copy holds there (no source device or inode). */
export interface EntryRow {
  readonly path: string;
  readonly kind: "file" | "symlink";
  readonly size: number;
  readonly mtimeMs: number;
  readonly mtimeNsec: number | null;
  readonly mode: number;
  readonly hash: string;
  readonly linkTarget: string | null;
  readonly archivedAt: number;
}

/** The disk writer's statements, run per change of every commit: prepared once per catalog and disk. */
interface WriteStatements {
  readonly insertIntent: Statement;
  readonly deleteIntent: Statement;
  readonly kindAndHash: Statement;
  readonly upsert: Statement;
  readonly delete: Statement;
}

const ENTRY_COLUMNS = "path, kind, size, mtime_ms AS mtimeMs, mtime_nsec AS mtimeNsec, mode, hash, link_target AS linkTarget, archived_at AS archivedAt";

/**
 * A disk catalog's `entries` (what this copy holds) and its write-ahead
 * `intents`. `schema` is the disk catalog's name on the connection: its
 * alias when attached to the host catalog (queries that compare it with
 * the host catalog's `main` tables need that), `main` when opened on its own.
 */
export class EntriesTable {
  readonly #sqlite: Database;
  readonly #schema: string;
  #has: Statement | undefined;
  #writes: WriteStatements | undefined;
  #holders: ContentHolders<string> | undefined;

  constructor(sqlite: Database, schema: string) {
    this.#sqlite = sqlite;
    this.#schema = schema;
  }

  /** Whether the catalog holds any entry. */
  any(): boolean {
    return this.#sqlite.query(`SELECT 1 FROM ${this.#schema}.entries LIMIT 1`).get() !== null;
  }

  byPath(path: string): EntryRow | undefined {
    return (this.#sqlite.query(`SELECT ${ENTRY_COLUMNS} FROM ${this.#schema}.entries WHERE path = ?`).get(path) as EntryRow | null) ?? undefined;
  }

  /** Whether `path` is an entry (asked per file found on the disk: prepared once). */
  has(path: string): boolean {
    this.#has ??= this.#sqlite.prepare(`SELECT 1 FROM ${this.#schema}.entries WHERE path = ?`);
    return this.#has.get(path) !== null;
  }

  /** Every entry, in path order. */
  all(): Iterable<EntryRow> {
    return this.#sqlite.query(`SELECT ${ENTRY_COLUMNS} FROM ${this.#schema}.entries ORDER BY path`).iterate() as Iterable<EntryRow>;
  }

  /** Paths of the files of a content (in the index's order). */
  pathsOfContent(hash: string): string[] {
    return (this.#sqlite.query(`SELECT path FROM ${this.#schema}.entries WHERE ${sameHash("hash", "?1")} AND kind = 'file'`).all(hash) as { path: string }[]).map(
      (row) => row.path,
    );
  }

  /** Paths of the files of a content that show its metadata too (mtime to the nanosecond, mode): those that may share one inode. */
  pathsShowingAlike(content: Content): string[] {
    return (
      this.#sqlite
        .query(
          `SELECT path FROM ${this.#schema}.entries WHERE ${sameHash("hash", "?1")} AND size = ?2 AND kind = 'file' AND mtime_ms = ?3 AND mtime_nsec IS ?4 AND mode = ?5 ORDER BY path`,
        )
        .all(content.hash, content.size, content.mtimeMs, content.mtimeNsec ?? null, content.mode) as { path: string }[]
    ).map((row) => row.path);
  }

  /** Up to 4 paths holding a content. */
  holdersOf(content: Pick<Content, "hash" | "size">): string[] {
    return (
      this.#sqlite.query(`SELECT path FROM ${this.#schema}.entries WHERE ${sameHash("hash", "?1")} AND size = ?2 AND kind = 'file' LIMIT 4`).all(content.hash, content.size) as {
        path: string;
      }[]
    ).map((row) => row.path);
  }

  /** Every content hash the copy holds in files. */
  contentHashes(): Set<string> {
    return new Set((this.#sqlite.query(`SELECT DISTINCT hash FROM ${this.#schema}.entries WHERE kind = 'file'`).all() as { hash: string }[]).map((row) => row.hash));
  }

  /** Every entry's path and hash, in no order. */
  pathsAndHashes(): Iterable<{ path: string; hash: string }> {
    return this.#sqlite.query(`SELECT path, hash FROM ${this.#schema}.entries`).iterate() as Iterable<{ path: string; hash: string }>;
  }

  /** Bytes of distinct content stored (hardlinks counted once). */
  usedBytes(): number {
    return (this.#sqlite.query(`SELECT coalesce(sum(size), 0) AS used FROM (SELECT DISTINCT hash, size FROM ${this.#schema}.entries WHERE kind = 'file')`).get() as { used: number })
      .used;
  }

  /** A new entry (a catalog being rebuilt). */
  insert(e: EntryRow): void {
    this.#sqlite
      .query(`INSERT INTO ${this.#schema}.entries (path, kind, size, mtime_ms, mtime_nsec, mode, hash, link_target, archived_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(e.path, e.kind, e.size, e.mtimeMs, e.mtimeNsec, e.mode, e.hash, e.linkTarget, e.archivedAt);
  }

  /**
   * Up to 1000 paths where the copy and the host catalog's `files` of disk
   * `diskId` disagree: placed there but missing or of another content, or
   * held but not placed there.
   */
  disagreementsWithHost(diskId: string): string[] {
    const s = this.#schema;
    return (
      this.#sqlite
        .query(
          `SELECT f.path AS path FROM main.files f LEFT JOIN ${s}.entries e ON e.path = f.path
             WHERE f.disk_id = ?1 AND (e.path IS NULL OR e.hash != f.hash)
           UNION
           SELECT e.path FROM ${s}.entries e LEFT JOIN main.files f ON f.path = e.path AND f.disk_id = ?1
             WHERE f.path IS NULL
           LIMIT 1000`,
        )
        .all(diskId) as { path: string }[]
    ).map((row) => row.path);
  }

  /**
   * What the host catalog places on disk `diskId` that this copy lacks or
   * holds in another version, in path order, leaving out the paths copy
   * `copyId`'s queue still changes.
   */
  behindHost(diskId: string, copyId: string): FileRecord[] {
    return this.#sqlite
      .query(
        `SELECT f.path, f.kind, f.size, f.mtime_ms AS mtimeMs, f.mtime_nsec AS mtimeNsec, f.mode, f.dev, f.ino, f.hash, f.link_target AS linkTarget FROM main.files f
         WHERE f.disk_id = ?1
           AND NOT EXISTS (SELECT 1 FROM ${this.#schema}.entries e WHERE e.path = f.path AND e.hash = f.hash AND e.kind = f.kind)
           AND NOT EXISTS (SELECT 1 FROM main.deferred_actions a WHERE a.copy_id = ?2 AND (a.path = f.path OR a.from_path = f.path))
         ORDER BY f.path`,
      )
      .all(diskId, copyId) as FileRecord[];
  }

  /** Paths this copy holds that the host catalog no longer places on disk `diskId`, in path order, leaving out those copy `copyId`'s queue still changes. */
  notOnHost(diskId: string, copyId: string): string[] {
    return (
      this.#sqlite
        .query(
          `SELECT e.path FROM ${this.#schema}.entries e
           WHERE NOT EXISTS (SELECT 1 FROM main.files f WHERE f.path = e.path AND f.disk_id = ?1)
             AND NOT EXISTS (SELECT 1 FROM main.deferred_actions a WHERE a.copy_id = ?2 AND (a.path = e.path OR a.from_path = e.path))
           ORDER BY e.path`,
        )
        .all(diskId, copyId) as { path: string }[]
    ).map((row) => row.path);
  }

  get #write(): WriteStatements {
    const s = this.#schema;
    return (this.#writes ??= {
      insertIntent: this.#sqlite.prepare(`INSERT INTO ${s}.intents (changes, created_at) VALUES (?, ?) RETURNING id`),
      deleteIntent: this.#sqlite.prepare(`DELETE FROM ${s}.intents WHERE id = ?`),
      kindAndHash: this.#sqlite.prepare(`SELECT hash, kind FROM ${s}.entries WHERE path = ?`),
      upsert: this.#sqlite.prepare(
        `INSERT INTO ${s}.entries (path, kind, size, mtime_ms, mtime_nsec, mode, hash, link_target, archived_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(path) DO UPDATE SET kind = excluded.kind, size = excluded.size, mtime_ms = excluded.mtime_ms, mtime_nsec = excluded.mtime_nsec,
           mode = excluded.mode, hash = excluded.hash, link_target = excluded.link_target, archived_at = excluded.archived_at`,
      ),
      delete: this.#sqlite.prepare(`DELETE FROM ${s}.entries WHERE path = ?`),
    });
  }

  /** What the copy holds at `path` (a lookup per change of a commit). */
  kindAndHashOf(path: string): { hash: string; kind: string } | undefined {
    return (this.#write.kindAndHash.get(path) as { hash: string; kind: string } | null) ?? undefined;
  }

  /** Records what `path` holds now, replacing its entry. */
  upsert(r: Omit<FileRecord, "dev" | "ino">, now: number): void {
    this.#write.upsert.run(r.path, r.kind, r.size, r.mtimeMs, r.mtimeNsec ?? null, r.mode, r.hash, r.linkTarget, now);
  }

  delete(path: string): void {
    this.#write.delete.run(path);
  }

  /** Who holds a content on this copy (paths, alike first), one at a time or a whole batch at once. */
  get holders(): ContentHolders<string> {
    return (this.#holders ??= new ContentHolders(this.#sqlite, { from: `${this.#schema}.entries`, columns: ["path"], toHolder: (values) => values[0] as string }));
  }

  /** Records a batch's intents (its changes as text, see intents.ts) before any is carried out; returns the batch's id. */
  recordIntents(changes: string, now: number): number {
    return (this.#write.insertIntent.get(changes, now) as { id: number }).id;
  }

  /** The batch is recorded: its intents go, in the transaction that records its results. */
  dropIntents(id: number): void {
    this.#write.deleteIntent.run(id);
  }

  /** The batches a killed run left (their changes as text), oldest first. */
  leftIntents(): { id: number; changes: string }[] {
    return this.#sqlite.query(`SELECT id, changes FROM ${this.#schema}.intents ORDER BY id`).all() as { id: number; changes: string }[];
  }

  /** Whether a batch's intents are left (a killed run's: to settle). */
  anyIntents(): boolean {
    return this.#sqlite.query(`SELECT 1 FROM ${this.#schema}.intents LIMIT 1`).get() !== null;
  }

  /**
   * How many batches the catalog has committed: its intents' last id, which
   * only grows (SQLite's AUTOINCREMENT counter outlives the rows).
   */
  committedBatches(): number {
    return (this.#sqlite.query(`SELECT seq FROM ${this.#schema}.sqlite_sequence WHERE name = 'intents'`).get() as { seq: number } | null)?.seq ?? 0;
  }
}
