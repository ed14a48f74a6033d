import type { Database, Statement } from "bun:sqlite";

/** A logical disk as the host catalog knows it. */
export interface DiskRow {
  readonly id: string;
  readonly label: string;
  readonly capacity: number | null;
  readonly state: "open" | "full" | "retired";
}

/** A disk with what it holds: files, bytes of distinct content (hardlinks once), copies. */
export interface DiskOverview extends DiskRow {
  readonly lastSeenAt: number | null;
  readonly files: number;
  readonly bytes: number;
  readonly copies: number;
}

/** A physical copy of a disk as the host catalog knows it. */
export interface CopyRow {
  readonly id: string;
  readonly createdAt: number;
  readonly lastSeenAt: number | null;
  readonly lastMountPath: string | null;
}

const DISK_COLUMNS = "id, label, capacity, state";
const COPY_COLUMNS = "id, created_at AS createdAt, last_seen_at AS lastSeenAt, last_mount_path AS lastMountPath";

/**
 * The host catalog's `archive` row, its `disks` and their `disk_copies`:
 * which archive this is, its disks (label, capacity, state) and the
 * physical copies of each. Statements go through bun:sqlite's statement
 * cache (`query`): each is prepared once per connection.
 */
export class DisksTable {
  readonly #sqlite: Database;
  #noteWrites: Statement | undefined;

  constructor(sqlite: Database) {
    this.#sqlite = sqlite;
  }

  /** The archive's id, if the catalog holds one. */
  archiveId(): string | undefined {
    return (this.#sqlite.query("SELECT id FROM main.archive LIMIT 1").get() as { id: string } | null)?.id;
  }

  /** Records a new archive; returns its id. */
  createArchive(now = Date.now()): string {
    const id = crypto.randomUUID();
    this.#sqlite.query("INSERT INTO main.archive (id, created_at) VALUES (?, ?)").run(id, now);
    return id;
  }

  byId(id: string): DiskRow | undefined {
    return (this.#sqlite.query(`SELECT ${DISK_COLUMNS} FROM main.disks WHERE id = ?`).get(id) as DiskRow | null) ?? undefined;
  }

  byLabel(label: string): DiskRow | undefined {
    return (this.#sqlite.query(`SELECT ${DISK_COLUMNS} FROM main.disks WHERE label = ?`).get(label) as DiskRow | null) ?? undefined;
  }

  /** Every disk's label by its id (retired ones too: their files may still be named). */
  labels(): Map<string, string> {
    return new Map((this.#sqlite.query("SELECT id, label FROM main.disks").all() as { id: string; label: string }[]).map((row) => [row.id, row.label]));
  }

  /** The disks not retired, oldest first. */
  notRetired(): DiskRow[] {
    return this.#sqlite.query(`SELECT ${DISK_COLUMNS} FROM main.disks WHERE state <> 'retired' ORDER BY created_at`).all() as DiskRow[];
  }

  count(): number {
    return (this.#sqlite.query("SELECT count(*) AS n FROM main.disks").get() as { n: number }).n;
  }

  /** Every disk, oldest first, with its files, bytes of distinct content and copies (status, disk list). */
  overview(): DiskOverview[] {
    return this.#sqlite
      .query(
        `SELECT d.id, d.label, d.state, d.capacity, d.last_seen_at AS lastSeenAt,
           (SELECT count(*) FROM main.files f WHERE f.disk_id = d.id) AS files,
           (SELECT coalesce(sum(size), 0) FROM (SELECT DISTINCT hash, size FROM main.files f WHERE f.disk_id = d.id AND kind = 'file')) AS bytes,
           (SELECT count(*) FROM main.disk_copies c WHERE c.disk_id = d.id) AS copies
         FROM main.disks d ORDER BY d.created_at`,
      )
      .all() as DiskOverview[];
  }

  /** A new open disk. */
  insert(disk: { readonly id: string; readonly label: string; readonly capacity: number | null }, now = Date.now()): void {
    this.#sqlite
      .query("INSERT INTO main.disks (id, label, capacity, state, created_at, last_seen_at) VALUES (?, ?, ?, 'open', ?, ?)")
      .run(disk.id, disk.label, disk.capacity, now, now);
  }

  /** The disk's capacity from now on; `reopen`: a full disk that has room again under it is open. */
  setCapacity(id: string, capacity: number, reopen: boolean): void {
    this.#sqlite.query(`UPDATE main.disks SET capacity = ?${reopen ? ", state = 'open'" : ""} WHERE id = ?`).run(capacity, id);
  }

  markFull(id: string): void {
    this.#sqlite.query("UPDATE main.disks SET state = 'full' WHERE id = ?").run(id);
  }

  markRetired(id: string): void {
    this.#sqlite.query("UPDATE main.disks SET state = 'retired' WHERE id = ?").run(id);
  }

  /** The copies of disk `diskId`, oldest first (the order `disk list` numbers them in). */
  copiesOf(diskId: string): CopyRow[] {
    return this.#sqlite.query(`SELECT ${COPY_COLUMNS} FROM main.disk_copies WHERE disk_id = ? ORDER BY created_at`).all(diskId) as CopyRow[];
  }

  copyCount(diskId: string): number {
    return (this.#sqlite.query("SELECT count(*) AS n FROM main.disk_copies WHERE disk_id = ?").get(diskId) as { n: number }).n;
  }

  /** The disk a copy belongs to, if the catalog knows the copy. */
  diskOfCopy(copyId: string): string | undefined {
    return (this.#sqlite.query("SELECT disk_id AS diskId FROM main.disk_copies WHERE id = ?").get(copyId) as { diskId: string } | null)?.diskId;
  }

  /** Where the copies of the disk labelled `label` were last mounted, most recent first. */
  lastMountPathsOf(label: string): string[] {
    return (
      this.#sqlite
        .query(
          `SELECT c.last_mount_path AS path FROM main.disk_copies c JOIN main.disks d ON d.id = c.disk_id
           WHERE d.label = ? AND c.last_mount_path IS NOT NULL ORDER BY c.last_seen_at DESC`,
        )
        .all(label) as { path: string }[]
    ).map((row) => row.path);
  }

  /** A new copy of disk `diskId`, seen now at `mountPath`. */
  insertCopy(copyId: string, diskId: string, mountPath: string, now = Date.now()): void {
    this.#sqlite
      .query("INSERT INTO main.disk_copies (id, disk_id, created_at, last_seen_at, last_mount_path) VALUES (?, ?, ?, ?, ?)")
      .run(copyId, diskId, now, now, mountPath);
  }

  /** A copy seen now at `mountPath`. */
  copySeen(copyId: string, mountPath: string, now = Date.now()): void {
    this.#sqlite.query("UPDATE main.disk_copies SET last_seen_at = ?, last_mount_path = ? WHERE id = ?").run(now, mountPath, copyId);
  }

  /** A disk seen now (one of its copies mounted for writing). */
  diskSeen(id: string, now = Date.now()): void {
    this.#sqlite.query("UPDATE main.disks SET last_seen_at = ? WHERE id = ?").run(now, id);
  }

  /**
   * How many batches the copy's own catalog had committed when this catalog
   * last saw it written (`disk_copies.writes`); null when not seen since the
   * column came, undefined for a copy the catalog does not know.
   */
  writesOf(copyId: string): number | null | undefined {
    return (this.#sqlite.query("SELECT writes FROM main.disk_copies WHERE id = ?").get(copyId) as { writes: number | null } | null)?.writes;
  }

  /** Records the copy's committed batches (every commit of a disk writer: prepared once). */
  noteWrites(copyId: string, committed: number): void {
    this.#noteWrites ??= this.#sqlite.prepare("UPDATE main.disk_copies SET writes = ? WHERE id = ?");
    this.#noteWrites.run(committed, copyId);
  }

  deleteCopy(copyId: string): void {
    this.#sqlite.query("DELETE FROM main.disk_copies WHERE id = ?").run(copyId);
  }
}
