import { sql } from "drizzle-orm";
import { index, integer, real, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/**
 * The host catalog: the whole archive's state, across every disk, online or
 * not. SQL names are snake_case, TS fields camelCase.
 */

/** One row: the archive this catalog belongs to. */
export const archive = sqliteTable("archive", {
  id: text("id").primaryKey(),
  createdAt: integer("created_at").notNull(),
});

/** A logical archive disk (label "A", "B", …). Its physical drives are copies. */
export const disks = sqliteTable(
  "disks",
  {
    id: text("id").primaryKey(),
    label: text("label").notNull(),
    /** Bytes the user allows on it; null means the file system's size. */
    capacity: integer("capacity"),
    /** open: receives new data; full: only changes; retired: gone. */
    state: text("state", { enum: ["open", "full", "retired"] }).notNull().default("open"),
    createdAt: integer("created_at").notNull(),
    lastSeenAt: integer("last_seen_at"),
  },
  (table) => [uniqueIndex("disks_label_idx").on(table.label)],
);

/** A physical drive holding a disk's data (a disk and its twin are two copies). */
export const diskCopies = sqliteTable(
  "disk_copies",
  {
    id: text("id").primaryKey(),
    diskId: text("disk_id")
      .notNull()
      .references(() => disks.id),
    createdAt: integer("created_at").notNull(),
    lastSeenAt: integer("last_seen_at"),
    lastMountPath: text("last_mount_path"),
    /**
     * How many batches this copy's own catalog had committed (its intents'
     * last id) when this catalog last saw it written. A copy mounted with
     * another count is not the state the catalog knows: a copy made by hand,
     * or an old image of it, that missed changes. Null: not seen since this
     * column came.
     */
    writes: integer("writes"),
  },
  (table) => [index("disk_copies_disk_idx").on(table.diskId)],
);

/** Every archived path (absolute source path), and where its data lives. */
export const files = sqliteTable(
  "files",
  {
    path: text("path").primaryKey(),
    kind: text("kind", { enum: ["file", "symlink"] }).notNull(),
    size: integer("size").notNull(),
    mtimeMs: real("mtime_ms").notNull(),
    /**
     * The nanoseconds of the mtime's second (st_mtim.tv_nsec), exact: mtime_ms,
     * a double, is some 100 ns off. Null in rows written before it was kept.
     */
    mtimeNsec: integer("mtime_nsec"),
    mode: integer("mode").notNull(),
    /** Source device and inode: unchanged and renamed files are found by them. */
    dev: integer("dev").notNull(),
    ino: integer("ino").notNull(),
    /** "sha1:<hex>" or "sha256:<hex>"; for symlinks, of the target text. */
    hash: text("hash").notNull(),
    linkTarget: text("link_target"),
    diskId: text("disk_id")
      .notNull()
      .references(() => disks.id),
    archivedAt: integer("archived_at").notNull(),
  },
  (table) => [
    index("files_inode_idx").on(table.dev, table.ino),
    // Content is looked up by the hash's last 16 hex digits (64 bits: as
    // good as unique; queries then compare the whole hash and the size).
    // A short key keeps the index a third of the size, and an insert into
    // it (at a random place, as hashes are) half as dear: it was a fifth
    // of committing a small file. See contentHashTail.
    index("files_hash_tail_idx").on(sql`substr(${table.hash}, -16)`),
    // Only large files are looked up by size (see the hasher): a partial
    // index keeps every small file's insert one b-tree cheaper.
    index("files_large_size_idx").on(table.size).where(sql`${table.size} >= 1048576`),
  ],
);

/**
 * Changes a physical copy of a disk still has to receive, in order (by id):
 * queued when the change concerns a copy that is not mounted (an offline
 * disk, or the twin that is away), applied before anything else touches
 * that copy when it is next mounted. The host `files` rows already show the
 * result; these rows only say how to bring the copy there without copying
 * data (rename, hardlink, delete), or, for a twin catching up, which content
 * to copy from the sources or another copy.
 */
export const deferredActions = sqliteTable(
  "deferred_actions",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    copyId: text("copy_id")
      .notNull()
      .references(() => diskCopies.id),
    /**
     * rename: fromPath → path; delete: path; link: hardlink path to content
     * the copy already holds (record.hash); symlink: make path a symlink;
     * copy: store record's content at path (twin catch-up only).
     */
    op: text("op", { enum: ["rename", "delete", "link", "symlink", "copy"] }).notNull(),
    path: text("path").notNull(),
    fromPath: text("from_path"),
    /** JSON FileRecord of what path holds afterwards (all ops but delete). */
    record: text("record"),
    createdAt: integer("created_at").notNull(),
    /** Why the last attempt to apply it failed (it stays queued until it succeeds). */
    lastError: text("last_error"),
  },
  (table) => [index("deferred_actions_copy_idx").on(table.copyId, table.id)],
);

/** One row per `blaine run`, with its summary, so `status` can tell the history. */
export const runs = sqliteTable("runs", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  startedAt: integer("started_at").notNull(),
  finishedAt: integer("finished_at"),
  exitCode: integer("exit_code"),
  summary: text("summary"),
  /** The machine that ran it: a host catalog rebuilt from disks tells whose runs it saw. */
  hostname: text("hostname"),
});
