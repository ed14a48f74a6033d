import type { Statement } from "bun:sqlite";
import type { ArchiveCatalog } from "./archive-catalog.ts";
import { sameHash } from "./content-holders.ts";
import type { FileRecord } from "./records.ts";

/** What a copy of a disk still has to do (one row of the host catalog's `deferred_actions`). */
export type DeferredOp = "rename" | "delete" | "link" | "symlink" | "copy";

export interface DeferredAction {
  readonly op: DeferredOp;
  readonly path: string;
  readonly fromPath?: string;
  /** What `path` holds afterwards (every op but delete). */
  readonly record?: FileRecord;
}

export interface QueuedAction extends DeferredAction {
  readonly id: number;
  readonly copyId: string;
  readonly createdAt: number;
  readonly lastError: string | null;
}

interface QueueRow {
  id: number;
  copyId: string;
  op: DeferredOp;
  path: string;
  fromPath: string | null;
  record: string | null;
  createdAt: number;
  lastError: string | null;
}

const ROW_COLUMNS = "id, copy_id AS copyId, op, path, from_path AS fromPath, record, created_at AS createdAt, last_error AS lastError";

function toQueued(row: QueueRow): QueuedAction {
  return {
    id: row.id,
    copyId: row.copyId,
    op: row.op,
    path: row.path,
    fromPath: row.fromPath ?? undefined,
    record: row.record ? (JSON.parse(row.record) as FileRecord) : undefined,
    createdAt: row.createdAt,
    lastError: row.lastError,
  };
}

/**
 * The host catalog's queue of deferred actions (`deferred_actions`, whose
 * SQL is all here), one row per physical copy. Every change to a disk is queued for each copy of it that does not receive
 * it at once (offline disks, the twin that is away); callers run these
 * inside the transaction that records the change, so a change is never
 * recorded without its queue entries.
 */
export class DeferredQueue {
  readonly #catalog: ArchiveCatalog;
  readonly #insertForCopies: Statement;
  readonly #delete: Statement;
  /** Copies per disk: a change to a disk with one copy has nobody to be queued for (most changes of most runs). */
  readonly #copiesOf = new Map<string, number>();
  /** Whether the archive had a single disk when this queue was made: then no path can live elsewhere (disks added later start empty). */
  #singleDisk: boolean | undefined;

  constructor(catalog: ArchiveCatalog) {
    this.#catalog = catalog;
    const db = catalog.sqlite;
    this.#insertForCopies = db.prepare(
      `INSERT INTO main.deferred_actions (copy_id, op, path, from_path, record, created_at)
       SELECT id, ?2, ?3, ?4, ?5, ?6 FROM main.disk_copies WHERE disk_id = ?1 AND id IS NOT ?7 ORDER BY id`,
    );
    this.#delete = db.prepare("DELETE FROM main.deferred_actions WHERE id = ?");
  }

  /** Queues `action` for every copy of disk `diskId` except `exceptCopyId` (the copy that already has it). */
  queue(diskId: string, action: DeferredAction, exceptCopyId: string | null = null): void {
    if (exceptCopyId !== null) {
      let copies = this.#copiesOf.get(diskId);
      if (copies === undefined) {
        copies = this.#catalog.disks.copyCount(diskId);
        this.#copiesOf.set(diskId, copies);
      }
      if (copies <= 1) return;
    }
    this.#insertForCopies.run(
      diskId,
      action.op,
      action.path,
      action.fromPath ?? null,
      action.record ? JSON.stringify(action.record) : null,
      Date.now(),
      exceptCopyId,
    );
  }

  /** Queues `action` for one copy alone (a new twin's fill, a stale copy's catch-up): every other copy already has it. */
  queueForCopy(copyId: string, action: DeferredAction, now = Date.now()): void {
    this.#catalog.sqlite
      .query("INSERT INTO main.deferred_actions (copy_id, op, path, from_path, record, created_at) VALUES (?, ?, ?, ?, ?, ?)")
      .run(copyId, action.op, action.path, action.fromPath ?? null, action.record ? JSON.stringify(action.record) : null, now);
  }

  /**
   * `path` is about to be recorded on disk `diskId`: if the host catalog
   * has it on another disk (a modified file whose old copy is elsewhere),
   * that old copy is queued for deletion there.
   */
  evictElsewhere(path: string, diskId: string): void {
    this.#singleDisk ??= this.#catalog.disks.count() <= 1;
    if (this.#singleDisk) return;
    const row = this.#catalog.files.diskAndHashOf(path);
    if (row && row.diskId !== diskId) this.queue(row.diskId, { op: "delete", path });
  }

  remove(id: number): void {
    this.#delete.run(id);
  }

  /** The queue of one copy, oldest first. */
  forCopy(copyId: string): QueuedAction[] {
    return (this.#catalog.sqlite.query(`SELECT ${ROW_COLUMNS} FROM main.deferred_actions WHERE copy_id = ? ORDER BY id`).all(copyId) as QueueRow[]).map(toQueued);
  }

  /** Whether an action for `path` (or renaming it away) still waits for this copy. */
  waitsFor(copyId: string, path: string): boolean {
    return (
      this.#catalog.sqlite.query("SELECT 1 FROM main.deferred_actions WHERE copy_id = ?1 AND (path = ?2 OR from_path = ?2) LIMIT 1").get(copyId, path) !== null
    );
  }

  /** Every path the copy's queue still changes (as target or as the source of a rename). */
  pathsOf(copyId: string): Set<string> {
    const rows = this.#catalog.sqlite.query("SELECT path, from_path AS fromPath FROM main.deferred_actions WHERE copy_id = ?").all(copyId) as { path: string; fromPath: string | null }[];
    const paths = new Set<string>();
    for (const row of rows) {
      paths.add(row.path);
      if (row.fromPath !== null) paths.add(row.fromPath);
    }
    return paths;
  }

  /**
   * Archived files of disk `diskId` whose data another copy still waits for
   * (a queued catch-up copy or hardlink, or a rename of a path it waits for
   * so) and holds under no other name, while copy `copyId` holds them
   * (nothing of its own waits on that path): what would be lost with it.
   */
  heldOnlyBy(copyId: string, diskId: string): { path: string; size: number }[] {
    const waitsForData = (alias: string) => `${alias}.op IN ('copy', 'link')`;
    return this.#catalog.sqlite
      .query(
        `SELECT DISTINCT f.path, f.size FROM main.files f
           JOIN main.deferred_actions a ON a.path = f.path
           JOIN main.disk_copies c ON c.id = a.copy_id AND c.disk_id = ?2 AND c.id != ?1
         WHERE f.disk_id = ?2 AND f.kind = 'file'
           AND (${waitsForData("a")} OR (a.op = 'rename' AND EXISTS (
                 SELECT 1 FROM main.deferred_actions r WHERE r.copy_id = a.copy_id AND r.id < a.id AND r.path = a.from_path AND ${waitsForData("r")})))
           AND NOT EXISTS (SELECT 1 FROM main.deferred_actions m WHERE m.copy_id = ?1 AND (m.path = f.path OR m.from_path = f.path))
           AND NOT EXISTS (
                 SELECT 1 FROM main.files g WHERE ${sameHash("g.hash", "f.hash")} AND g.size = f.size AND g.disk_id = ?2 AND g.path != f.path
                   AND NOT EXISTS (SELECT 1 FROM main.deferred_actions b WHERE b.copy_id = a.copy_id AND (b.path = g.path OR b.from_path = g.path)))
         ORDER BY f.path`,
      )
      .all(copyId, diskId) as { path: string; size: number }[];
  }

  /** Drops every action still queued for `path` on any copy of disk `diskId` (its data is gone from the archive). */
  dropPath(diskId: string, path: string): void {
    this.#catalog.sqlite
      .query("DELETE FROM main.deferred_actions WHERE path = ? AND copy_id IN (SELECT id FROM main.disk_copies WHERE disk_id = ?)")
      .run(path, diskId);
  }

  /** Drops a copy's whole queue (the copy leaves the archive); returns how many actions it held. */
  dropCopy(copyId: string): number {
    return this.#catalog.sqlite.query("DELETE FROM main.deferred_actions WHERE copy_id = ?").run(copyId).changes;
  }

  /** Drops the queues of every copy of disk `diskId` (a retired disk). */
  dropDisk(diskId: string): void {
    this.#catalog.sqlite.query("DELETE FROM main.deferred_actions WHERE copy_id IN (SELECT id FROM main.disk_copies WHERE disk_id = ?)").run(diskId);
  }

  /** The id of the last action ever queued (ids only grow): the difference of two readings is how many were queued in between. */
  lastId(): number {
    const row = this.#catalog.sqlite.query("SELECT seq FROM main.sqlite_sequence WHERE name = 'deferred_actions'").get() as { seq: number } | null;
    return row?.seq ?? 0;
  }

  count(copyId: string): number {
    return (this.#catalog.sqlite.query("SELECT count(*) AS n FROM main.deferred_actions WHERE copy_id = ?").get(copyId) as { n: number }).n;
  }

  /** Whether anything waits for this copy. */
  anyFor(copyId: string): boolean {
    return this.#catalog.sqlite.query("SELECT 1 FROM main.deferred_actions WHERE copy_id = ? LIMIT 1").get(copyId) !== null;
  }

  /** Every action queued, for every copy. */
  countAll(): number {
    return (this.#catalog.sqlite.query("SELECT count(*) AS n FROM main.deferred_actions").get() as { n: number }).n;
  }

  setError(id: number, message: string | null): void {
    this.#catalog.sqlite.query("UPDATE main.deferred_actions SET last_error = ? WHERE id = ?").run(message, id);
  }
}

/** Every queued action (optionally of one disk's copies), oldest first, with the disk label. */
export function listDeferred(catalog: ArchiveCatalog, diskLabel?: string): (QueuedAction & { disk: string })[] {
  const rows = catalog.sqlite
    .query(
      `SELECT ${ROW_COLUMNS.replace(/(^|, )(\w+)/g, "$1a.$2")}, d.label AS disk FROM main.deferred_actions a
         JOIN main.disk_copies c ON c.id = a.copy_id JOIN main.disks d ON d.id = c.disk_id
       WHERE ?1 IS NULL OR d.label = ?1 ORDER BY a.id`,
    )
    .all(diskLabel ?? null) as (QueueRow & { disk: string })[];
  return rows.map((row) => ({ ...toQueued(row), disk: row.disk }));
}
