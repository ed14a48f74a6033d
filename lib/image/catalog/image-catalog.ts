import { BlaineError, ExitCode, UsageError } from "../../errors.ts";
import type { ImageSql } from "./sql.ts";

/**
 * All of the image catalog's SQL: versions, their block lists, and the
 * chunks on their way out. The hot paths are set-based: a new version
 * records only the blocks that differ from its base and inherits the rest
 * (see inheritsUid), changed blocks are written in multi-row statements, and
 * cleanup chooses its chunks in passes of thousands.
 *
 * A version's block at an index is its own row there, else the row its
 * chain of inherited versions holds nearest to it, else zeros; only indexes
 * below its own block count count (an image that shrank). Every read of a
 * version's blocks goes through RESOLVED below, and a removal merges the
 * removed version's rows into those inheriting from it first, so no
 * version's blocks ever change by another's removal.
 */

export type VersionStatus = "incomplete" | "valid" | "invalid";

export interface VersionRow {
  readonly uid: string;
  readonly name: string;
  readonly snapshot: string;
  /** ms since the epoch. */
  readonly date: number;
  readonly size: number;
  readonly blockSize: number;
  readonly status: VersionStatus;
  readonly protected: boolean;
  readonly labels: Record<string, string>;
  readonly baseUid: string | null;
  /** The version whose rows stand for the indexes this one has none of (null: those are zeros). */
  readonly inheritsUid: string | null;
  readonly bytesRead: number;
  readonly bytesWritten: number;
  readonly bytesDeduplicated: number;
  readonly bytesSparse: number;
}

/** One block of a version; a hash of null is all zeros (sparse). */
export interface BlockRow {
  readonly idx: number;
  readonly hash: string | null;
  readonly size: number;
  readonly valid: boolean;
}

/** A store document noted to rewrite or delete, and the note's sequence number (see docUpdates). */
export interface DocNote {
  readonly uid: string;
  readonly seq: number;
}

export interface VersionCounts {
  readonly bytesRead: number;
  readonly bytesWritten: number;
  readonly bytesDeduplicated: number;
  readonly bytesSparse: number;
}

/** Statements stay well under SQLite's 32 766 and PostgreSQL's 65 535 parameters. */
const ROWS_PER_STATEMENT = 1000;
const HASHES_PER_STATEMENT = 5000;

const VERSION_COLUMNS =
  "uid, name, snapshot, date, size, block_size AS \"blockSize\", status, protected, labels, base_uid AS \"baseUid\", inherits_uid AS \"inheritsUid\", bytes_read AS \"bytesRead\", bytes_written AS \"bytesWritten\", bytes_deduplicated AS \"bytesDeduplicated\", bytes_sparse AS \"bytesSparse\"";

type RawVersion = Record<keyof VersionRow, unknown>;

function versionOf(raw: RawVersion): VersionRow {
  return {
    uid: String(raw.uid),
    name: String(raw.name),
    snapshot: String(raw.snapshot),
    date: Number(raw.date),
    size: Number(raw.size),
    blockSize: Number(raw.blockSize),
    status: String(raw.status) as VersionStatus,
    protected: Number(raw.protected) === 1,
    labels: JSON.parse(String(raw.labels)) as Record<string, string>,
    baseUid: raw.baseUid === null ? null : String(raw.baseUid),
    inheritsUid: raw.inheritsUid === null || raw.inheritsUid === undefined ? null : String(raw.inheritsUid),
    bytesRead: Number(raw.bytesRead),
    bytesWritten: Number(raw.bytesWritten),
    bytesDeduplicated: Number(raw.bytesDeduplicated),
    bytesSparse: Number(raw.bytesSparse),
  };
}

function blockOf(row: Record<string, unknown>): BlockRow {
  return { idx: Number(row.idx), hash: row.hash === null ? null : String(row.hash), size: Number(row.size), valid: Number(row.valid) === 1 };
}

function placeholders(count: number, width = 1): string {
  const row = width === 1 ? "?" : `(${Array(width).fill("?").join(", ")})`;
  return Array(count).fill(row).join(", ");
}

function* slices<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let start = 0; start < items.length; start += size) yield items.slice(start, start + size);
}

/**
 * Versions whose inheritance chains are longer than this get none: a backup
 * over such a base copies the base's resolved block list instead (a full
 * list every this many versions), so a lookup in a chain probes at most
 * this many versions' rows. Removals (prune) shorten chains.
 */
export const MAX_INHERITANCE_DEPTH = 64;

/**
 * The resolved block rows of the versions `roots` selects (a condition on
 * image_versions): columns root, idx, hash, size, valid; `where` narrows
 * the rows (b.idx), `params` fill roots' then where's placeholders. Each
 * version's chain is walked by a recursive CTE and the nearest row per
 * index wins: SQLite takes the other columns of a MIN() row from that row,
 * PostgreSQL's DISTINCT ON keeps the first row of each index by depth.
 * A version passes on only the indexes below its own block count: the
 * rows a chain member may give are those below the smallest count from the
 * root to it (an image that shrank and grew again is zeros where it grew).
 */
function resolvedRows(dialect: "sqlite" | "postgres", roots: string, where = "true"): string {
  const chain =
    "WITH RECURSIVE chain(root, uid, depth, blocks) AS (" +
    `SELECT uid, uid, 0, (size + block_size - 1) / block_size FROM image_versions WHERE ${roots} ` +
    "UNION ALL SELECT c.root, p.uid, c.depth + 1, CASE WHEN (p.size + p.block_size - 1) / p.block_size < c.blocks THEN (p.size + p.block_size - 1) / p.block_size ELSE c.blocks END " +
    "FROM chain c JOIN image_versions v ON v.uid = c.uid JOIN image_versions p ON p.uid = v.inherits_uid) ";
  const from = `FROM chain c JOIN image_blocks b ON b.version_uid = c.uid AND b.idx < c.blocks WHERE ${where}`;
  return dialect === "sqlite"
    ? `${chain}SELECT c.root AS root, b.idx AS idx, b.hash AS hash, b.size AS size, b.valid AS valid, MIN(c.depth) AS depth ${from} GROUP BY c.root, b.idx`
    : `${chain}SELECT DISTINCT ON (c.root, b.idx) c.root AS root, b.idx AS idx, b.hash AS hash, b.size AS size, b.valid AS valid ${from} ORDER BY c.root, b.idx, c.depth`;
}

export class ImageCatalog {
  readonly sql: ImageSql;

  constructor(sql: ImageSql) {
    this.sql = sql;
  }

  get name(): string {
    return this.sql.name;
  }

  async close(): Promise<void> {
    await this.sql.close();
  }

  // --- versions -------------------------------------------------------------------------------

  /**
   * Records a new, incomplete version with no block rows yet: a backup from
   * a base inherits the base's rows (inheritsUid) and writes only those that
   * differ; over a base whose chain is MAX_INHERITANCE_DEPTH long it then
   * takes them as its own when it is finished (flattenBlocks).
   */
  async createVersion(version: Omit<VersionRow, "status" | "protected" | keyof VersionCounts>): Promise<void> {
    await this.sql.transaction(async (tx) => {
      // In the same transaction as the insert: a removal of the base is either done (refused here) or sees this heir.
      if (version.inheritsUid && (await tx.all("SELECT uid FROM image_versions WHERE uid = ?", [version.inheritsUid])).length === 0) {
        throw new BlaineError(`version ${version.inheritsUid}, the base of the backup, was removed before it began; no version was made`, ExitCode.failure);
      }
      await tx.run(
        "INSERT INTO image_versions (uid, name, snapshot, date, size, block_size, status, protected, labels, base_uid, inherits_uid) VALUES (?, ?, ?, ?, ?, ?, 'incomplete', 0, ?, ?, ?)",
        [version.uid, version.name, version.snapshot, version.date, version.size, version.blockSize, JSON.stringify(version.labels), version.baseUid, version.inheritsUid],
      );
    });
  }

  /** How many versions a version inherits through (0: none). */
  async inheritanceDepth(uid: string): Promise<number> {
    const [row] = await this.sql.all<{ depth: unknown }>(
      "WITH RECURSIVE chain(uid, depth) AS (SELECT inherits_uid, 1 FROM image_versions WHERE uid = ? AND inherits_uid IS NOT NULL " +
        "UNION ALL SELECT v.inherits_uid, c.depth + 1 FROM chain c JOIN image_versions v ON v.uid = c.uid WHERE v.inherits_uid IS NOT NULL) SELECT MAX(depth) AS depth FROM chain",
      [uid],
    );
    return Number(row?.depth ?? 0);
  }

  /**
   * Makes a version inherit nothing: its resolved blocks (through whatever
   * it inherits from now: a removal may have merged its base into it) all
   * become rows of its own, in one transaction with one INSERT … SELECT.
   * A backup over a base whose chain is MAX_INHERITANCE_DEPTH long does
   * this as it finishes, so the chain starts again.
   */
  async flattenBlocks(uid: string): Promise<void> {
    await this.sql.transaction(async (tx) => {
      await tx.run(
        `INSERT INTO image_blocks (version_uid, idx, hash, size, valid) SELECT ?, idx, hash, size, valid FROM (${resolvedRows(tx.dialect, "uid = ?")}) r ` +
          "WHERE true ON CONFLICT (version_uid, idx) DO NOTHING",
        [uid, uid],
      );
      await tx.run("UPDATE image_versions SET inherits_uid = NULL WHERE uid = ?", [uid]);
    });
  }

  /**
   * Marks a version finished; its rows now protect its chunks, so its
   * pending claims go. `docInherits`: what the store document just written
   * says it inherits; a removal that merged its parent into it since (and
   * re-pointed it) leaves the document a rewrite (see docUpdates), and
   * then true is returned: the caller settles the documents.
   */
  async finishVersion(uid: string, status: VersionStatus, counts: VersionCounts, docInherits?: string | null): Promise<boolean> {
    return this.sql.transaction(async (tx) => {
      let stale = false;
      if (docInherits !== undefined) {
        const [row] = await tx.all<{ inherits: string | null }>("SELECT inherits_uid AS inherits FROM image_versions WHERE uid = ?", [uid]);
        if (row && (row.inherits ?? null) !== docInherits) {
          await this.#noteDocs(tx, [uid], "rewrite");
          stale = true;
        }
      }
      await tx.run(
        "UPDATE image_versions SET status = ?, bytes_read = ?, bytes_written = ?, bytes_deduplicated = ?, bytes_sparse = ? WHERE uid = ?",
        [status, counts.bytesRead, counts.bytesWritten, counts.bytesDeduplicated, counts.bytesSparse, uid],
      );
      await tx.run("DELETE FROM image_pending_chunks WHERE version_uid = ?", [uid]);
      return stale;
    });
  }

  async version(uid: string): Promise<VersionRow | undefined> {
    const rows = await this.sql.all<RawVersion>(`SELECT ${VERSION_COLUMNS} FROM image_versions WHERE uid = ?`, [uid]);
    return rows[0] ? versionOf(rows[0]) : undefined;
  }

  /** The version a user named by its uid (or an unambiguous start of it, 8 characters at least). */
  async requireVersion(given: string): Promise<VersionRow> {
    const exact = await this.version(given);
    if (exact) return exact;
    if (given.length >= 8) {
      const rows = await this.sql.all<RawVersion>(`SELECT ${VERSION_COLUMNS} FROM image_versions WHERE uid LIKE ? LIMIT 2`, [`${given.replace(/[%_]/g, "")}%`]);
      if (rows.length === 1) return versionOf(rows[0]);
      if (rows.length > 1) throw new UsageError(`version "${given}" is ambiguous: give more of its uid`);
    }
    throw new BlaineError(`no version "${given}" in ${this.name} (blaine image ls lists them)`, ExitCode.usage);
  }

  async versions(name?: string): Promise<VersionRow[]> {
    const rows = name
      ? await this.sql.all<RawVersion>(`SELECT ${VERSION_COLUMNS} FROM image_versions WHERE name = ? ORDER BY date, uid`, [name])
      : await this.sql.all<RawVersion>(`SELECT ${VERSION_COLUMNS} FROM image_versions ORDER BY date, uid`);
    return rows.map(versionOf);
  }

  async setProtected(uid: string, flag: boolean): Promise<void> {
    await this.sql.run("UPDATE image_versions SET protected = ? WHERE uid = ?", [flag ? 1 : 0, uid]);
  }

  /**
   * Removes a version: its chunks become deletion candidates (cleanup deletes
   * those no other version references once their grace period is over).
   * Its store document is left to delete (see docUpdates), after those of
   * the versions that inherited from it are rewritten.
   */
  async removeVersion(uid: string, now = Date.now()): Promise<void> {
    await this.sql.transaction(async (tx) => {
      await tx.run(
        "INSERT INTO image_deleted_chunks (hash, since) SELECT DISTINCT hash, ? FROM image_blocks WHERE version_uid = ? AND hash IS NOT NULL ON CONFLICT (hash) DO UPDATE SET since = excluded.since",
        [now, uid],
      );
      await tx.run(
        "INSERT INTO image_deleted_chunks (hash, since) SELECT DISTINCT hash, ? FROM image_pending_chunks WHERE version_uid = ? ON CONFLICT (hash) DO UPDATE SET since = excluded.since",
        [now, uid],
      );
      await tx.run("DELETE FROM image_pending_chunks WHERE version_uid = ?", [uid]);
      await this.#mergeIntoHeirs(tx, [uid]);
      await tx.run("DELETE FROM image_blocks WHERE version_uid = ?", [uid]);
      await tx.run("DELETE FROM image_versions WHERE uid = ?", [uid]);
    });
  }

  /**
   * Removes several versions at once (a volume's prune): one transaction,
   * set-based, no chunk read. Each removed version's rows are merged into
   * the versions inheriting from it first (sparsebak's merge of pruned
   * sessions into the next). Then every chunk the store holds that no block
   * row references any more and no running backup claimed becomes a
   * deletion candidate, dated `since` (a cleanup pass with that cutoff
   * frees it). A chunk that already was a candidate (a `blaine image rm`'s)
   * keeps its own date: its grace period still holds.
   */
  async removeVersions(uids: readonly string[], since = Date.now()): Promise<void> {
    if (uids.length === 0) return;
    await this.sql.transaction(async (tx) => {
      for (const part of slices(uids, HASHES_PER_STATEMENT)) {
        const list = placeholders(part.length);
        // Chunks those backups stored but never recorded (killed ones): candidates like the rest.
        await tx.run(
          `INSERT INTO image_deleted_chunks (hash, since) SELECT DISTINCT hash, ? FROM image_pending_chunks WHERE version_uid IN (${list}) ON CONFLICT (hash) DO NOTHING`,
          [since, ...part],
        );
        await tx.run(`DELETE FROM image_pending_chunks WHERE version_uid IN (${list})`, part);
      }
      await this.#mergeIntoHeirs(tx, uids);
      for (const part of slices(uids, HASHES_PER_STATEMENT)) await tx.run(`DELETE FROM image_blocks WHERE version_uid IN (${placeholders(part.length)})`, part);
      for (const part of slices(uids, HASHES_PER_STATEMENT)) await tx.run(`DELETE FROM image_versions WHERE uid IN (${placeholders(part.length)})`, part);
      // EXCEPT, not NOT IN: PostgreSQL runs NOT IN over a list larger than work_mem row by row.
      await tx.run(
        "INSERT INTO image_deleted_chunks (hash, since) SELECT hash, ? FROM (SELECT hash FROM image_chunks EXCEPT SELECT hash FROM image_blocks WHERE hash IS NOT NULL " +
          "EXCEPT SELECT hash FROM image_pending_chunks) unreferenced WHERE true ON CONFLICT (hash) DO NOTHING",
        [since],
      );
    });
  }

  /**
   * Inside a removal's transaction, before the rows of `removing` go: every
   * version that inherits from one of them and stays gets that one's rows
   * at the indexes it has none of (and below its block count), and inherits
   * what that one inherited; what it resolves to is unchanged. Heirs are
   * served before their parents (a removed heir's heirs are re-pointed to
   * its parent, which then serves them), so each removed version's rows
   * are copied once per staying heir, not along the chain. The documents of
   * staying finished heirs are noted for rewriting, those of the removed
   * for deleting, in that order (see docUpdates).
   */
  async #mergeIntoHeirs(tx: ImageSql, removing: readonly string[]): Promise<void> {
    const going = new Set(removing);
    const parentOf = new Map<string, string | null>();
    for (const part of slices([...going], HASHES_PER_STATEMENT)) {
      for (const row of await tx.all<{ uid: string; inherits: string | null }>(`SELECT uid, inherits_uid AS inherits FROM image_versions WHERE uid IN (${placeholders(part.length)})`, part)) {
        parentOf.set(row.uid, row.inherits ?? null);
      }
    }
    // Removed versions ordered heirs first: one is served once no removed version still inherits from it.
    const waiting = new Map<string, number>();
    for (const parent of parentOf.values()) if (parent && parentOf.has(parent)) waiting.set(parent, (waiting.get(parent) ?? 0) + 1);
    const ready = [...parentOf.keys()].filter((uid) => !waiting.has(uid));
    const rewrite = new Set<string>();
    while (ready.length > 0) {
      const uid = ready.pop() as string;
      const parent = parentOf.get(uid) ?? null;
      const [removed] = await tx.all<{ blocks: unknown }>("SELECT (size + block_size - 1) / block_size AS blocks FROM image_versions WHERE uid = ?", [uid]);
      const heirs = await tx.all<{ uid: string; blocks: unknown; size: unknown; blockSize: unknown; status: string }>(
        "SELECT uid, (size + block_size - 1) / block_size AS blocks, size, block_size AS \"blockSize\", status FROM image_versions WHERE inherits_uid = ?",
        [uid],
      );
      for (const heir of heirs) {
        if (going.has(heir.uid)) continue;
        await tx.run(
          "INSERT INTO image_blocks (version_uid, idx, hash, size, valid) SELECT ?, idx, hash, size, valid FROM image_blocks WHERE version_uid = ? AND idx < ? ON CONFLICT (version_uid, idx) DO NOTHING",
          [heir.uid, uid, Number(heir.blocks)],
        );
        // The removed version passed on nothing at or past its own count; what it inherited holds data there the heir
        // must not take: zeros of its own at those indexes.
        if (parent && Number(removed.blocks) < Number(heir.blocks)) {
          await tx.run(
            "INSERT INTO image_blocks (version_uid, idx, hash, size, valid) SELECT ?, idx, NULL, CASE WHEN (idx + 1) * CAST(? AS BIGINT) > CAST(? AS BIGINT) THEN CAST(? AS BIGINT) - idx * CAST(? AS BIGINT) ELSE CAST(? AS BIGINT) END, 1 " +
              `FROM (${resolvedRows(tx.dialect, "uid = ?", "b.idx >= ? AND b.idx < ?")}) r WHERE hash IS NOT NULL ON CONFLICT (version_uid, idx) DO NOTHING`,
            [heir.uid, Number(heir.blockSize), Number(heir.size), Number(heir.size), Number(heir.blockSize), Number(heir.blockSize), parent, Number(removed.blocks), Number(heir.blocks)],
          );
        }
        await tx.run("UPDATE image_versions SET inherits_uid = ? WHERE uid = ?", [parent, heir.uid]);
        // An incomplete heir too: a backup killed after it wrote its document has one naming the removed version.
        rewrite.add(heir.uid);
      }
      if (parent && parentOf.has(parent)) {
        const left = (waiting.get(parent) ?? 1) - 1;
        waiting.set(parent, left);
        if (left === 0) ready.push(parent);
      }
    }
    await this.#noteDocs(tx, [...rewrite], "rewrite");
    await this.#noteDocs(tx, removing, "delete");
  }

  /** Notes store documents to rewrite or delete (see docUpdates); a note made again gets a new sequence number. */
  async #noteDocs(tx: ImageSql, uids: readonly string[], action: "rewrite" | "delete"): Promise<void> {
    for (const part of slices(uids, ROWS_PER_STATEMENT)) {
      await tx.run(
        `INSERT INTO image_doc_updates (uid, action, seq) VALUES ${placeholders(part.length, 3)} ON CONFLICT (uid) DO UPDATE SET action = excluded.action, seq = image_doc_updates.seq + 1`,
        part.flatMap((uid) => [uid, action, 1]),
      );
    }
  }

  /** Store documents still to rewrite (from the catalog) and to delete, in that order, with their notes' sequence numbers (see docUpdates). */
  async docUpdates(): Promise<{ rewrite: DocNote[]; delete: DocNote[] }> {
    const rows = await this.sql.all<{ uid: string; action: string; seq: unknown }>("SELECT uid, action, seq FROM image_doc_updates ORDER BY uid");
    const notes = (action: string) => rows.filter((row) => row.action === action).map((row) => ({ uid: row.uid, seq: Number(row.seq) }));
    return { rewrite: notes("rewrite"), delete: notes("delete") };
  }

  /** Store documents settled: their notes go, each only as it was read (a removal since made it again, for its own settling). */
  async docUpdatesDone(notes: readonly DocNote[]): Promise<void> {
    if (notes.length === 0) return;
    await this.sql.transaction(async (tx) => {
      for (const note of notes) await tx.run("DELETE FROM image_doc_updates WHERE uid = ? AND seq = ?", [note.uid, note.seq]);
    });
  }

  /**
   * Records a whole version with its blocks (import), and the chunks the
   * store holds of it; they stop being deletion candidates. A version that
   * inherits (its inheritsUid set) must name one the catalog holds.
   */
  async insertVersion(version: VersionRow, blocks: readonly BlockRow[], present: readonly { hash: string; size: number }[]): Promise<VersionStatus> {
    return this.sql.transaction(async (tx) => {
      if (version.inheritsUid && (await tx.all("SELECT uid FROM image_versions WHERE uid = ?", [version.inheritsUid])).length === 0) {
        throw new BlaineError(`version ${version.uid} inherits from version ${version.inheritsUid}, which ${this.name} does not hold`, ExitCode.usage);
      }
      // A removal of the same uid killed before its document was deleted: that note is void now the version is back.
      await tx.run("DELETE FROM image_doc_updates WHERE uid = ?", [version.uid]);
      await tx.run(
        "INSERT INTO image_versions (uid, name, snapshot, date, size, block_size, status, protected, labels, base_uid, inherits_uid, bytes_read, bytes_written, bytes_deduplicated, bytes_sparse) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
          version.uid, version.name, version.snapshot, version.date, version.size, version.blockSize, version.status, version.protected ? 1 : 0,
          JSON.stringify(version.labels), version.baseUid, version.inheritsUid, version.bytesRead, version.bytesWritten, version.bytesDeduplicated, version.bytesSparse,
        ],
      );
      await this.#upsertBlocks(tx, version.uid, blocks);
      for (const part of slices(present, ROWS_PER_STATEMENT)) {
        await tx.run(`INSERT INTO image_chunks (hash, size, valid) VALUES ${placeholders(part.length, 3)} ON CONFLICT (hash) DO NOTHING`, part.flatMap((chunk) => [chunk.hash, chunk.size, 1]));
      }
      const hashes = [...new Set(blocks.flatMap((block) => (block.hash ? [block.hash] : [])))];
      for (const part of slices(hashes, HASHES_PER_STATEMENT)) {
        await tx.run(`DELETE FROM image_deleted_chunks WHERE hash IN (${placeholders(part.length)})`, part);
      }
      // A valid version whose inherited blocks a scrub found bad is not valid here either.
      if (version.status === "valid" && version.inheritsUid) {
        const bad = await tx.all(`SELECT 1 FROM (${resolvedRows(tx.dialect, "uid = ?")}) r WHERE valid = 0 LIMIT 1`, [version.uid]);
        if (bad.length > 0) {
          await tx.run("UPDATE image_versions SET status = 'invalid' WHERE uid = ?", [version.uid]);
          return "invalid";
        }
      }
      return version.status;
    });
  }

  // --- blocks ---------------------------------------------------------------------------------

  /** A version's blocks (resolved: its own rows and those it inherits) with indexes in [from, to), in index order. */
  async blocks(uid: string, from: number, to: number): Promise<BlockRow[]> {
    const rows = await this.sql.all<Record<string, unknown>>(
      `SELECT idx, hash, size, valid FROM (${resolvedRows(this.sql.dialect, "uid = ?", "b.idx >= ? AND b.idx < ?")}) r ORDER BY idx`,
      [uid, from, to],
    );
    return rows.map(blockOf);
  }

  /**
   * Every block of a version (resolved), in index order, in windows of
   * 50 000 indexes: each window's query resolves only the rows in it (a
   * range of each chain member's primary key), never the rest of the list.
   */
  async *allBlocks(uid: string): AsyncGenerator<BlockRow> {
    const version = await this.version(uid);
    if (!version) return;
    const count = Math.ceil(version.size / version.blockSize);
    for (let from = 0; from < count; from += 50_000) yield* await this.blocks(uid, from, Math.min(count, from + 50_000));
  }

  /** A version's own rows only, in index order: what its store document lists beside the version it inherits. */
  async ownBlocks(uid: string): Promise<BlockRow[]> {
    const rows = await this.sql.all<Record<string, unknown>>("SELECT idx, hash, size, valid FROM image_blocks WHERE version_uid = ? ORDER BY idx", [uid]);
    return rows.map(blockOf);
  }

  /** The base's block hashes at some indexes only (a backup told which blocks changed reads, and compares, no others). */
  async hashesAt(uid: string, indexes: Iterable<number>): Promise<Map<number, string | null>> {
    const map = new Map<number, string | null>();
    for (const [idx, row] of await this.blocksAt(uid, indexes)) map.set(idx, row.hash);
    return map;
  }

  /** A version's blocks (resolved) at some indexes only, by index (an index that is zeros is absent). */
  async blocksAt(uid: string, indexes: Iterable<number>): Promise<Map<number, BlockRow>> {
    const map = new Map<number, BlockRow>();
    for (const part of slices([...indexes].sort((a, b) => a - b), HASHES_PER_STATEMENT)) {
      const rows = await this.sql.all<Record<string, unknown>>(resolvedRows(this.sql.dialect, "uid = ?", `b.idx IN (${placeholders(part.length)})`), [uid, ...part]);
      for (const row of rows) map.set(Number(row.idx), blockOf(row));
    }
    return map;
  }

  /** The bytes of data a version's blocks hold (resolved; zeros count none). */
  async dataBytes(uid: string): Promise<number> {
    const [row] = await this.sql.all<{ bytes: unknown }>(`SELECT SUM(size) AS bytes FROM (${resolvedRows(this.sql.dialect, "uid = ?")}) r WHERE hash IS NOT NULL`, [uid]);
    return Number(row?.bytes ?? 0);
  }

  /** The base's block hashes by index (--from without hints compares every block read with them). */
  async hashesByIndex(uid: string): Promise<Map<number, string | null>> {
    const map = new Map<number, string | null>();
    for await (const row of this.allBlocks(uid)) map.set(row.idx, row.hash);
    return map;
  }

  /**
   * A backup's claim on a batch of chunks, in one transaction among the
   * writers: of `hashes`, those a cleanup is deleting right now are
   * returned as `deleting` (wait, then claim them again); the others become
   * pending for this version — no cleanup takes them until the version
   * records them — and `known` are those the store holds, good as far as
   * any scrub knows (referenced, not written).
   */
  async claimHashes(uid: string, hashes: readonly string[], owner: { host: string; pid: number }, now = Date.now()): Promise<{ known: Set<string>; deleting: Set<string> }> {
    const known = new Set<string>();
    const deleting = new Set<string>();
    const distinct = [...new Set(hashes)];
    if (distinct.length === 0) return { known, deleting };
    await this.sql.transaction(async (tx) => {
      for (const part of slices(distinct, HASHES_PER_STATEMENT)) {
        const list = placeholders(part.length);
        for (const row of await tx.all<{ hash: string }>(`SELECT hash FROM image_deleting_chunks WHERE hash IN (${list})`, part)) deleting.add(row.hash);
        const claim = part.filter((hash) => !deleting.has(hash));
        if (claim.length === 0) continue;
        const claimList = placeholders(claim.length);
        const rows = await tx.all<{ hash: string }>(`SELECT hash FROM image_chunks WHERE hash IN (${claimList}) AND valid = 1`, claim);
        for (const row of rows) known.add(row.hash);
        await tx.run(
          `INSERT INTO image_pending_chunks (hash, version_uid, host, pid, since) VALUES ${placeholders(claim.length, 5)} ON CONFLICT (hash, version_uid) DO NOTHING`,
          claim.flatMap((hash) => [hash, uid, owner.host, owner.pid, now]),
        );
      }
    });
    return { known, deleting };
  }

  /**
   * Writes a batch of a version's block rows (new or changed) in one
   * transaction, after the chunks they need were stored; `stored` are the
   * chunks this batch wrote (a bad one written again is good again).
   */
  async writeBlocks(uid: string, rows: readonly BlockRow[], stored: readonly { hash: string; size: number }[] = []): Promise<void> {
    const hashes = [...new Set(rows.flatMap((row) => (row.hash ? [row.hash] : [])))];
    await this.sql.transaction(async (tx) => {
      if (tx.dialect === "postgres") {
        // Arrays as parameters: one statement each whatever the batch, parsed once.
        if (stored.length > 0) {
          await tx.run("INSERT INTO image_chunks (hash, size, valid) SELECT hash, size, 1 FROM unnest(?::text[], ?::bigint[]) AS s(hash, size) ON CONFLICT (hash) DO UPDATE SET size = excluded.size, valid = 1", [
            stored.map((chunk) => chunk.hash),
            stored.map((chunk) => chunk.size),
          ]);
        }
        if (hashes.length > 0) await tx.run("DELETE FROM image_deleted_chunks WHERE hash = ANY(?::text[])", [hashes]);
        await this.#upsertBlocks(tx, uid, rows);
        return;
      }
      for (const part of slices(stored, ROWS_PER_STATEMENT)) {
        await tx.run(
          `INSERT INTO image_chunks (hash, size, valid) VALUES ${placeholders(part.length, 3)} ON CONFLICT (hash) DO UPDATE SET size = excluded.size, valid = 1`,
          part.flatMap((chunk) => [chunk.hash, chunk.size, 1]),
        );
      }
      for (const part of slices(hashes, HASHES_PER_STATEMENT)) {
        await tx.run(`DELETE FROM image_deleted_chunks WHERE hash IN (${placeholders(part.length)})`, part);
      }
      await this.#upsertBlocks(tx, uid, rows);
    });
  }

  /** The hosts and pids of running (or killed) backups holding pending claims. */
  async pendingOwners(): Promise<{ host: string; pid: number }[]> {
    const rows = await this.sql.all<{ host: string; pid: unknown }>("SELECT DISTINCT host, pid FROM image_pending_chunks");
    return rows.map((row) => ({ host: row.host, pid: Number(row.pid) }));
  }

  /** Drops the pending claims of a backup that is gone (killed): its version stays incomplete. */
  async dropPending(owner: { host: string; pid: number }): Promise<void> {
    await this.sql.run("DELETE FROM image_pending_chunks WHERE host = ? AND pid = ?", [owner.host, owner.pid]);
  }

  async #upsertBlocks(tx: ImageSql, uid: string, rows: readonly BlockRow[]): Promise<void> {
    if (tx.dialect === "postgres") {
      // One array per column: a statement of any length with five parameters, parsed once (about twice as fast as rows of VALUES).
      for (const part of slices(rows, 10 * ROWS_PER_STATEMENT)) {
        await tx.run(
          "INSERT INTO image_blocks (version_uid, idx, hash, size, valid) SELECT ?, * FROM unnest(?::int[], ?::text[], ?::bigint[], ?::int[]) ON CONFLICT (version_uid, idx) DO UPDATE SET hash = excluded.hash, size = excluded.size, valid = excluded.valid",
          [uid, part.map((row) => row.idx), part.map((row) => row.hash), part.map((row) => row.size), part.map((row) => (row.valid ? 1 : 0))],
        );
      }
      return;
    }
    for (const part of slices(rows, ROWS_PER_STATEMENT)) {
      const params: unknown[] = [];
      for (const row of part) params.push(uid, row.idx, row.hash, row.size, row.valid ? 1 : 0);
      await tx.run(
        `INSERT INTO image_blocks (version_uid, idx, hash, size, valid) VALUES ${placeholders(part.length, 5)} ON CONFLICT (version_uid, idx) DO UPDATE SET hash = excluded.hash, size = excluded.size, valid = excluded.valid`,
        params,
      );
    }
  }

  /** Which of `hashes` a cleanup is deleting right now. */
  async deleting(hashes: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (const part of slices(hashes, HASHES_PER_STATEMENT)) {
      for (const row of await this.sql.all<{ hash: string }>(`SELECT hash FROM image_deleting_chunks WHERE hash IN (${placeholders(part.length)})`, part)) found.add(row.hash);
    }
    return found;
  }

  // --- scrub ------------------------------------------------------------------------------------

  /** The distinct chunks of some versions' blocks (resolved; each read once however many versions share it). */
  async distinctHashes(uids: readonly string[]): Promise<string[]> {
    const rows = await this.sql.all<{ hash: string }>(
      `SELECT DISTINCT hash FROM (${resolvedRows(this.sql.dialect, `uid IN (${placeholders(uids.length)})`)}) r WHERE hash IS NOT NULL ORDER BY hash`,
      uids,
    );
    return rows.map((row) => row.hash);
  }

  /**
   * Marks bad chunks' blocks invalid, and every version whose blocks
   * (resolved: inherited ones too) hold one; returns those versions' uids.
   */
  async markBad(hashes: readonly string[]): Promise<string[]> {
    if (hashes.length === 0) return [];
    return this.sql.transaction(async (tx) => {
      const versions = new Set<string>();
      for (const part of slices(hashes, HASHES_PER_STATEMENT)) {
        const list = placeholders(part.length);
        await tx.run(`UPDATE image_blocks SET valid = 0 WHERE hash IN (${list})`, part);
        await tx.run(`UPDATE image_chunks SET valid = 0 WHERE hash IN (${list})`, part);
        // Only the indexes where some row holds a bad chunk are resolved, for every version.
        const holding = await tx.all<{ uid: string }>(
          `SELECT DISTINCT root AS uid FROM (${resolvedRows(tx.dialect, "true", `b.idx IN (SELECT idx FROM image_blocks WHERE hash IN (${list}))`)}) r WHERE hash IN (${list})`,
          [...part, ...part],
        );
        for (const row of holding) versions.add(row.uid);
      }
      for (const part of slices([...versions], HASHES_PER_STATEMENT)) {
        await tx.run(`UPDATE image_versions SET status = 'invalid' WHERE status = 'valid' AND uid IN (${placeholders(part.length)})`, part);
      }
      return [...versions].sort();
    });
  }

  /**
   * After a full scrub found every chunk of these versions good: their
   * blocks (and the same chunks' blocks elsewhere) are valid again, and so
   * is each of these versions whose blocks (resolved) hold no invalid one.
   */
  async revalidate(uids: readonly string[]): Promise<string[]> {
    if (uids.length === 0) return [];
    return this.sql.transaction(async (tx) => {
      const list = placeholders(uids.length);
      const scrubbed = `SELECT hash FROM (${resolvedRows(tx.dialect, `uid IN (${list})`)}) r WHERE hash IS NOT NULL`;
      await tx.run(`UPDATE image_blocks SET valid = 1 WHERE valid = 0 AND hash IN (${scrubbed})`, uids);
      await tx.run(`UPDATE image_chunks SET valid = 1 WHERE valid = 0 AND hash IN (${scrubbed})`, uids);
      const stillBad = new Set(
        (await tx.all<{ uid: string }>(`SELECT DISTINCT root AS uid FROM (${resolvedRows(tx.dialect, `uid IN (${list})`)}) r WHERE valid = 0`, uids)).map((row) => row.uid),
      );
      const candidates = await tx.all<{ uid: string }>(`SELECT uid FROM image_versions WHERE uid IN (${list}) AND status = 'invalid'`, uids);
      const revived = candidates.map((row) => row.uid).filter((uid) => !stillBad.has(uid));
      for (const part of slices(revived, HASHES_PER_STATEMENT)) {
        await tx.run(`UPDATE image_versions SET status = 'valid' WHERE uid IN (${placeholders(part.length)})`, part);
      }
      return revived;
    });
  }

  // --- cleanup ----------------------------------------------------------------------------------

  /**
   * One pass of cleanup: up to `limit` candidates past their grace period
   * (became candidates at or before `cutoff`) that no version references
   * and no running backup claimed move to the deleting list, in the same
   * transaction (a backup that wants one after this waits until it is gone,
   * then writes it anew). Stale candidates (referenced again) are dropped.
   */
  async takeGarbage(cutoff: number, limit: number, now = Date.now()): Promise<string[]> {
    return this.sql.transaction(async (tx) => {
      // One scan of the block rows (no index on hash: see the schema) finds the candidates referenced again.
      await tx.run("DELETE FROM image_deleted_chunks WHERE hash IN (SELECT hash FROM image_blocks WHERE hash IN (SELECT hash FROM image_deleted_chunks))");
      const rows = await tx.all<{ hash: string }>(
        "SELECT hash FROM image_deleted_chunks c WHERE since <= ? AND NOT EXISTS (SELECT 1 FROM image_pending_chunks p WHERE p.hash = c.hash) ORDER BY hash LIMIT ?",
        [cutoff, limit],
      );
      const hashes = rows.map((row) => row.hash);
      if (hashes.length > 0) {
        const list = placeholders(hashes.length);
        await tx.run(`INSERT INTO image_deleting_chunks (hash, since) SELECT hash, ? FROM image_deleted_chunks WHERE hash IN (${list}) ON CONFLICT (hash) DO NOTHING`, [now, ...hashes]);
        await tx.run(`DELETE FROM image_deleted_chunks WHERE hash IN (${list})`, hashes);
        // No backup dedups against them from now on.
        await tx.run(`DELETE FROM image_chunks WHERE hash IN (${list})`, hashes);
      }
      return hashes;
    });
  }

  /**
   * `cleanup --full`: of chunks found in the store, those the catalog does
   * not know as stored (written by a backup killed before it recorded them),
   * that are no deletion candidates (those wait for their grace period) and
   * that no running backup claimed move to the deleting list.
   */
  async takeOrphans(listed: readonly string[], now = Date.now()): Promise<string[]> {
    if (listed.length === 0) return [];
    return this.sql.transaction(async (tx) => {
      const orphans: string[] = [];
      for (const part of slices(listed, HASHES_PER_STATEMENT)) {
        const list = placeholders(part.length);
        const held = new Set(
          (await tx.all<{ hash: string }>(
            `SELECT hash FROM image_chunks WHERE hash IN (${list}) UNION SELECT hash FROM image_deleted_chunks WHERE hash IN (${list}) UNION SELECT hash FROM image_pending_chunks WHERE hash IN (${list})`,
            [...part, ...part, ...part],
          )).map((row) => row.hash),
        );
        const free = part.filter((hash) => !held.has(hash));
        if (free.length === 0) continue;
        await tx.run(`INSERT INTO image_deleting_chunks (hash, since) VALUES ${placeholders(free.length, 2)} ON CONFLICT (hash) DO NOTHING`, free.flatMap((hash) => [hash, now]));
        orphans.push(...free);
      }
      return orphans;
    });
  }

  /** A cleanup deleted these chunks: backups waiting for them may write them again. */
  async doneDeleting(hashes: readonly string[]): Promise<void> {
    for (const part of slices(hashes, HASHES_PER_STATEMENT)) {
      await this.sql.run(`DELETE FROM image_deleting_chunks WHERE hash IN (${placeholders(part.length)})`, part);
    }
  }

  /**
   * Chunks left on the deleting list by a cleanup that died (the caller
   * holds the cleanup lock): those referenced again are simply dropped from
   * it; the rest are returned, to be deleted.
   */
  async leftoverDeleting(): Promise<string[]> {
    return this.sql.transaction(async (tx) => {
      await tx.run("DELETE FROM image_deleting_chunks WHERE hash IN (SELECT hash FROM image_blocks WHERE hash IN (SELECT hash FROM image_deleting_chunks))");
      return (await tx.all<{ hash: string }>("SELECT hash FROM image_deleting_chunks ORDER BY hash")).map((row) => row.hash);
    });
  }

  /** Deletion candidates still in their grace period: how many, and when the first of them is due. */
  async candidatesInGrace(cutoff: number): Promise<{ count: number; oldestSince: number | undefined }> {
    const rows = await this.sql.all<{ count: unknown; oldest: unknown }>("SELECT COUNT(*) AS count, MIN(since) AS oldest FROM image_deleted_chunks WHERE since > ?", [cutoff]);
    const count = Number(rows[0]?.count ?? 0);
    return { count, oldestSince: count > 0 ? Number(rows[0].oldest) : undefined };
  }

  /** Uids of every version (cleanup --full: store metadata of removed versions). */
  async versionUids(): Promise<Set<string>> {
    return new Set((await this.sql.all<{ uid: string }>("SELECT uid FROM image_versions")).map((row) => row.uid));
  }
}
