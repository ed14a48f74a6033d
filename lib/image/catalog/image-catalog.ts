import { BlaineError, ExitCode, UsageError } from "../../errors.ts";
import type { ImageSql } from "./sql.ts";

/**
 * All of the image catalog's SQL: versions, their block lists, and the
 * chunks on their way out. The hot paths are set-based: a new version's
 * block list is copied from its base by INSERT … SELECT (a range of indexes
 * at a time), changed blocks are written in multi-row statements, and
 * cleanup chooses its chunks in passes of thousands.
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
  "uid, name, snapshot, date, size, block_size AS \"blockSize\", status, protected, labels, base_uid AS \"baseUid\", bytes_read AS \"bytesRead\", bytes_written AS \"bytesWritten\", bytes_deduplicated AS \"bytesDeduplicated\", bytes_sparse AS \"bytesSparse\"";

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
   * a base copies the base's rows in with `copyBaseBlocks` (all of them
   * before the version is finished).
   */
  async createVersion(version: Omit<VersionRow, "status" | "protected" | keyof VersionCounts>): Promise<void> {
    await this.sql.transaction(async (tx) => {
      await tx.run(
        "INSERT INTO image_versions (uid, name, snapshot, date, size, block_size, status, protected, labels, base_uid) VALUES (?, ?, ?, ?, ?, ?, 'incomplete', 0, ?, ?)",
        [version.uid, version.name, version.snapshot, version.date, version.size, version.blockSize, JSON.stringify(version.labels), version.baseUid],
      );
    });
  }

  /**
   * Copies the base's block rows with indexes in [from, to) into a version
   * being written (one INSERT … SELECT in one transaction); rows the version
   * already has (blocks its backup wrote) stay. Throws when the base or the
   * version is gone: a copy made of ranges taken while both existed is
   * whole, since a version and its rows are removed in one transaction.
   */
  async copyBaseBlocks(uid: string, baseUid: string, from: number, to: number): Promise<void> {
    await this.sql.transaction(async (tx) => {
      const present = await tx.all<{ uid: string }>("SELECT uid FROM image_versions WHERE uid IN (?, ?)", [uid, baseUid]);
      if (!present.some((row) => row.uid === baseUid)) {
        throw new BlaineError(`version ${baseUid}, the base of version ${uid}, was removed while the backup copied its block list; no version was made`, ExitCode.failure);
      }
      if (!present.some((row) => row.uid === uid)) throw new BlaineError(`version ${uid} was removed while its backup ran`, ExitCode.failure);
      await tx.run(
        "INSERT INTO image_blocks (version_uid, idx, hash, size, valid) SELECT ?, idx, hash, size, valid FROM image_blocks WHERE version_uid = ? AND idx >= ? AND idx < ? " +
          "ON CONFLICT (version_uid, idx) DO NOTHING",
        [uid, baseUid, from, to],
      );
    });
  }

  /** Marks a version finished; its rows now protect its chunks, so its pending claims go. */
  async finishVersion(uid: string, status: VersionStatus, counts: VersionCounts): Promise<void> {
    await this.sql.transaction(async (tx) => {
      await tx.run(
        "UPDATE image_versions SET status = ?, bytes_read = ?, bytes_written = ?, bytes_deduplicated = ?, bytes_sparse = ? WHERE uid = ?",
        [status, counts.bytesRead, counts.bytesWritten, counts.bytesDeduplicated, counts.bytesSparse, uid],
      );
      await tx.run("DELETE FROM image_pending_chunks WHERE version_uid = ?", [uid]);
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
      await tx.run("DELETE FROM image_blocks WHERE version_uid = ?", [uid]);
      await tx.run("DELETE FROM image_versions WHERE uid = ?", [uid]);
    });
  }

  /**
   * Removes several versions at once (a volume's prune): one transaction,
   * set-based, no chunk read and no other version's rows touched. Then
   * every chunk the store holds that no block row references any more and
   * no running backup claimed becomes a deletion candidate, dated `since`
   * (a cleanup pass with that cutoff frees it). A chunk that already was a
   * candidate (a `blaine image rm`'s) keeps its own date: its grace period
   * still holds. That one pass over the rows that remain replaces a search
   * through the removed rows, which for sessions holding full block lists
   * are most of the table.
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
      if (!(await this.#keepOnlyOtherBlocks(tx, uids))) {
        for (const part of slices(uids, HASHES_PER_STATEMENT)) await tx.run(`DELETE FROM image_blocks WHERE version_uid IN (${placeholders(part.length)})`, part);
      }
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
   * On SQLite, when the versions going hold more block rows than the ones
   * staying (a prune of most sessions, each a full block list), empties
   * image_blocks with one unconditioned DELETE (SQLite frees the table's
   * pages whole, with no per-row b-tree work) after copying the rows that
   * stay to a temporary table, and puts them back: for 50 sessions of 60
   * (1.6 M rows going, 330 K staying) the rows took about 3 s deleted one
   * by one and take about 0.8 s this way. Inside the caller's
   * transaction, so a kill leaves the table as it was. Returns false (the
   * caller deletes the rows) otherwise, and on PostgreSQL, whose DELETE
   * only marks rows.
   */
  async #keepOnlyOtherBlocks(tx: ImageSql, removing: readonly string[]): Promise<boolean> {
    if (this.sql.dialect !== "sqlite") return false;
    const going = new Set(removing);
    // Every block row is a listed version's (a version and its rows are written, and removed, in one transaction).
    const versions = await tx.all<{ uid: string; blocks: unknown }>("SELECT uid, (size + block_size - 1) / block_size AS blocks FROM image_versions");
    const staying = versions.filter((row) => !going.has(row.uid));
    const rows = (list: typeof versions) => list.reduce((sum, row) => sum + Number(row.blocks), 0);
    if (rows(staying) * 2 >= rows(versions)) return false;
    await tx.run("DROP TABLE IF EXISTS temp.image_blocks_staying");
    await tx.run("CREATE TEMP TABLE image_blocks_staying (version_uid TEXT NOT NULL, idx INTEGER NOT NULL, hash TEXT, size INTEGER NOT NULL, valid INTEGER NOT NULL)");
    for (const part of slices(staying.map((row) => row.uid), HASHES_PER_STATEMENT)) {
      await tx.run(
        `INSERT INTO temp.image_blocks_staying SELECT version_uid, idx, hash, size, valid FROM image_blocks WHERE version_uid IN (${placeholders(part.length)})`,
        part,
      );
    }
    await tx.run("DELETE FROM image_blocks");
    await tx.run("INSERT INTO image_blocks (version_uid, idx, hash, size, valid) SELECT version_uid, idx, hash, size, valid FROM temp.image_blocks_staying");
    await tx.run("DROP TABLE temp.image_blocks_staying");
    return true;
  }

  /** Records a whole version with its blocks (import), and the chunks the store holds of it; they stop being deletion candidates. */
  async insertVersion(version: VersionRow, blocks: readonly BlockRow[], present: readonly { hash: string; size: number }[]): Promise<void> {
    await this.sql.transaction(async (tx) => {
      await tx.run(
        "INSERT INTO image_versions (uid, name, snapshot, date, size, block_size, status, protected, labels, base_uid, bytes_read, bytes_written, bytes_deduplicated, bytes_sparse) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
          version.uid, version.name, version.snapshot, version.date, version.size, version.blockSize, version.status, version.protected ? 1 : 0,
          JSON.stringify(version.labels), version.baseUid, version.bytesRead, version.bytesWritten, version.bytesDeduplicated, version.bytesSparse,
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
    });
  }

  // --- blocks ---------------------------------------------------------------------------------

  /** A version's block rows from index `from` on, `limit` at a time, in index order. */
  async blocks(uid: string, from: number, limit: number): Promise<BlockRow[]> {
    const rows = await this.sql.all<Record<string, unknown>>(
      "SELECT idx, hash, size, valid FROM image_blocks WHERE version_uid = ? AND idx >= ? ORDER BY idx LIMIT ?",
      [uid, from, limit],
    );
    return rows.map(blockOf);
  }

  /** Every block row of a version, in index order (windows of 50 000 rows). */
  async *allBlocks(uid: string): AsyncGenerator<BlockRow> {
    let from = 0;
    for (;;) {
      const rows = await this.blocks(uid, from, 50_000);
      yield* rows;
      if (rows.length < 50_000) return;
      from = rows[rows.length - 1].idx + 1;
    }
  }

  /** The base's block hashes at some indexes only (a backup told which blocks changed reads, and compares, no others). */
  async hashesAt(uid: string, indexes: Iterable<number>): Promise<Map<number, string | null>> {
    const map = new Map<number, string | null>();
    for (const [idx, row] of await this.blocksAt(uid, indexes)) map.set(idx, row.hash);
    return map;
  }

  /** A version's rows at some indexes only, by index (an index without a row is absent). */
  async blocksAt(uid: string, indexes: Iterable<number>): Promise<Map<number, BlockRow>> {
    const map = new Map<number, BlockRow>();
    for (const part of slices([...indexes].sort((a, b) => a - b), HASHES_PER_STATEMENT)) {
      const rows = await this.sql.all<Record<string, unknown>>(`SELECT idx, hash, size, valid FROM image_blocks WHERE version_uid = ? AND idx IN (${placeholders(part.length)})`, [uid, ...part]);
      for (const row of rows) map.set(Number(row.idx), blockOf(row));
    }
    return map;
  }

  /** How many block rows a version has (from the primary key's index alone). */
  async blockRowCount(uid: string): Promise<number> {
    const [row] = await this.sql.all<{ count: unknown }>("SELECT COUNT(*) AS count FROM image_blocks WHERE version_uid = ?", [uid]);
    return Number(row?.count ?? 0);
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

  /** Drops a version's rows at and beyond `blockCount` (an image that shrank since its base). */
  async truncateBlocks(uid: string, blockCount: number): Promise<void> {
    await this.sql.run("DELETE FROM image_blocks WHERE version_uid = ? AND idx >= ?", [uid, blockCount]);
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

  /** The distinct chunks of some versions (each read once however many versions share it). */
  async distinctHashes(uids: readonly string[]): Promise<string[]> {
    const rows = await this.sql.all<{ hash: string }>(
      `SELECT DISTINCT hash FROM image_blocks WHERE version_uid IN (${placeholders(uids.length)}) AND hash IS NOT NULL ORDER BY hash`,
      uids,
    );
    return rows.map((row) => row.hash);
  }

  /** Marks bad chunks' blocks invalid, and every version holding one; returns those versions' uids. */
  async markBad(hashes: readonly string[]): Promise<string[]> {
    if (hashes.length === 0) return [];
    return this.sql.transaction(async (tx) => {
      const versions = new Set<string>();
      for (const part of slices(hashes, HASHES_PER_STATEMENT)) {
        const list = placeholders(part.length);
        await tx.run(`UPDATE image_blocks SET valid = 0 WHERE hash IN (${list})`, part);
        await tx.run(`UPDATE image_chunks SET valid = 0 WHERE hash IN (${list})`, part);
        await tx.run(`UPDATE image_versions SET status = 'invalid' WHERE status = 'valid' AND uid IN (SELECT version_uid FROM image_blocks WHERE hash IN (${list}))`, part);
        for (const row of await tx.all<{ uid: string }>(`SELECT DISTINCT version_uid AS uid FROM image_blocks WHERE hash IN (${list})`, part)) versions.add(row.uid);
      }
      return [...versions].sort();
    });
  }

  /**
   * After a full scrub found every chunk of these versions good: their
   * blocks (and the same chunks' blocks elsewhere) are valid again, and so
   * is each of these versions that holds no invalid block.
   */
  async revalidate(uids: readonly string[]): Promise<string[]> {
    if (uids.length === 0) return [];
    return this.sql.transaction(async (tx) => {
      const list = placeholders(uids.length);
      const scrubbed = `SELECT hash FROM image_blocks WHERE version_uid IN (${list}) AND hash IS NOT NULL`;
      await tx.run(`UPDATE image_blocks SET valid = 1 WHERE valid = 0 AND hash IN (${scrubbed})`, uids);
      await tx.run(`UPDATE image_chunks SET valid = 1 WHERE valid = 0 AND hash IN (${scrubbed})`, uids);
      const revived = await tx.all<{ uid: string }>(
        `SELECT uid FROM image_versions v WHERE uid IN (${list}) AND status = 'invalid' AND NOT EXISTS (SELECT 1 FROM image_blocks b WHERE b.version_uid = v.uid AND b.valid = 0)`,
        uids,
      );
      for (const part of slices(revived.map((row) => row.uid), HASHES_PER_STATEMENT)) {
        await tx.run(`UPDATE image_versions SET status = 'valid' WHERE uid IN (${placeholders(part.length)})`, part);
      }
      return revived.map((row) => row.uid);
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
