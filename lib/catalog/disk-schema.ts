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
    mode: integer("mode").notNull(),
    hash: text("hash").notNull(),
    linkTarget: text("link_target"),
    archivedAt: integer("archived_at").notNull(),
  },
  (table) => [index("entries_hash_idx").on(table.hash, table.size)],
);

/**
 * Write-ahead intents: each change to the disk's file system is recorded here
 * before it is made, and removed in the transaction that records its result.
 * After a kill -9, what is left here is finished or undone by looking at the
 * file system, so the catalogs always end up agreeing with the disk.
 */
export const intents = sqliteTable("intents", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  /** place: temp file → path; link: existing path → path; rename: fromPath → path; delete: path. */
  op: text("op", { enum: ["place", "link", "rename", "delete"] }).notNull(),
  path: text("path").notNull(),
  fromPath: text("from_path"),
  /** The temp file (below .blaine/tmp) that "place" renames into the data tree. */
  tempName: text("temp_name"),
  /** The host catalog row this change produces, as JSON (null for deletes). */
  record: text("record"),
  createdAt: integer("created_at").notNull(),
});
