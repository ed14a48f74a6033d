import { sql } from "drizzle-orm";
import { index, integer, real, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * The disk catalog (`DIR/.blaine/catalog.db`): what this disk holds, so the
 * disk can be checked and read on its own.
 */
export const entries = sqliteTable(
  "entries",
  {
    /** Absolute source path; the data sits at DIR + path. */
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
    hash: text("hash").notNull(),
    linkTarget: text("link_target"),
    archivedAt: integer("archived_at").notNull(),
  },
  // By the hash's last 16 hex digits, as the host catalog's files (see host-schema.ts).
  (table) => [index("entries_hash_tail_idx").on(sql`substr(${table.hash}, -16)`)],
);

/**
 * Write-ahead intents: each batch of changes to the disk's file system is
 * recorded here before it is made, and removed in the transaction that
 * records its results. After a kill -9, what is left here is finished or
 * undone by looking at the file system, so the catalogs always end up
 * agreeing with the disk. One row per batch (not per file): intents are
 * written for every change, and a row per file cost more than the copy of
 * a small file.
 */
export const intents = sqliteTable("intents", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  /** JSON array of IntentChange (see disk-writer.ts), in the order they are carried out. */
  changes: text("changes").notNull(),
  createdAt: integer("created_at").notNull(),
});

/**
 * PAR2 recovery sets on this disk, one per content (hash): a row means the
 * set is complete and durable under `.blaine/parity/`, so the content is
 * protected. Keyed by content, not path, so renames and hardlinks never
 * need new parity; the row goes when the last path of the content does.
 * Rows are written only after the set's files are synced (a set without a
 * row, left by a killed run, is checked or made again by the next run).
 */
export const paritySets = sqliteTable("parity_sets", {
  hash: text("hash").primaryKey(),
  size: integer("size").notNull(),
  sliceSize: integer("slice_size").notNull(),
  recoverySlices: integer("recovery_slices").notNull(),
  /** Number of .par2 files (index and vol files) and their total bytes. */
  files: integer("files").notNull(),
  bytes: integer("bytes").notNull(),
  createdAt: integer("created_at").notNull(),
});
