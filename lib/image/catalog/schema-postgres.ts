import { bigint, index, integer, primaryKey, pgTable, text } from "drizzle-orm/pg-core";

/**
 * The block-image catalog on PostgreSQL. The same tables, column for column, as
 * schema-sqlite.ts (the queries in image-catalog.ts run on both): flags
 * are integers 0/1, times are milliseconds since the epoch.
 */

/** One backup of one image: backy's "version". */
export const versions = pgTable(
  "image_versions",
  {
    uid: text("uid").primaryKey(),
    name: text("name").notNull(),
    snapshot: text("snapshot").notNull().default(""),
    /** When the backup started (ms since the epoch). */
    date: bigint("date", { mode: "number" }).notNull(),
    size: bigint("size", { mode: "number" }).notNull(),
    blockSize: bigint("block_size", { mode: "number" }).notNull(),
    /** incomplete (being written, or killed), valid, invalid (a block failed a scrub). */
    status: text("status").notNull(),
    protected: integer("protected").notNull().default(0),
    /** JSON object of the user's labels. */
    labels: text("labels").notNull().default("{}"),
    /** The version this one was made from (--from), if any. */
    baseUid: text("base_uid"),
    /**
     * The version whose block rows stand for every index this one has no row
     * of: a backup from a base records only the blocks that differ from it
     * (a volume session only its changes). Null: a missing index is zeros.
     * Removing a version first merges its rows into the versions inheriting
     * from it (image-catalog.ts removeVersions).
     */
    inheritsUid: text("inherits_uid"),
    bytesRead: bigint("bytes_read", { mode: "number" }).notNull().default(0),
    bytesWritten: bigint("bytes_written", { mode: "number" }).notNull().default(0),
    bytesDeduplicated: bigint("bytes_deduplicated", { mode: "number" }).notNull().default(0),
    bytesSparse: bigint("bytes_sparse", { mode: "number" }).notNull().default(0),
  },
  (table) => [index("image_versions_name_idx").on(table.name, table.date)],
);

/** A version's own blocks: those that hold data, or that are zeros where what it inherits holds data; a missing index is inherited (see inheritsUid), or zeros. */
export const blocks = pgTable(
  "image_blocks",
  {
    versionUid: text("version_uid").notNull(),
    idx: integer("idx").notNull(),
    /** sha256 hex of the block's content; null: all zeros (sparse). */
    hash: text("hash"),
    size: bigint("size", { mode: "number" }).notNull(),
    /** 0 once a scrub found its chunk missing or damaged. */
    valid: integer("valid").notNull().default(1),
  },
  // No index on hash: every row of every version would pay for it (a 1 TiB version is 262 144 rows, most
  // copied from its base); lookups by hash go to image_chunks, and the rare scans (cleanup, scrub) read the table.
  (table) => [primaryKey({ columns: [table.versionUid, table.idx] })],
);

/**
 * The chunks the store holds, one row each, written when a backup has
 * stored one: what dedup looks up (by primary key), and what cleanup --full
 * compares the store's listing with. `valid` 0: a scrub found it bad (a
 * backup of the same content writes it again).
 */
export const chunks = pgTable("image_chunks", {
  hash: text("hash").primaryKey(),
  /** Bytes of the stored object (compressed, with its header). */
  size: bigint("size", { mode: "number" }).notNull(),
  valid: integer("valid").notNull().default(1),
});

/** Chunks no version may reference any more (a version was removed): deleted by cleanup after a grace period. */
export const deletedChunks = pgTable("image_deleted_chunks", {
  hash: text("hash").primaryKey(),
  since: bigint("since", { mode: "number" }).notNull(),
});

/**
 * Store documents (versions/UID.json) that no longer say what the catalog
 * does, in the order they must be settled: `rewrite` (a version that
 * inherited from a removed one: its rows and parent changed) before
 * `delete` (a removed version's), so a document never names a parent whose
 * document is gone. Written in the removal's transaction; settled by
 * version-removal.ts (under the catalog's "docs" lock) before anything else
 * removes or judges documents.
 */
export const docUpdates = pgTable("image_doc_updates", {
  uid: text("uid").primaryKey(),
  action: text("action", { enum: ["rewrite", "delete"] }).notNull(),
  /** Bumped whenever the note is made again: a settler clears only the notes it saw, never one made since. */
  seq: integer("seq").notNull().default(1),
});

/** Chunks a cleanup is deleting right now: a backup that needs one writes it again once the cleanup is done. */
export const deletingChunks = pgTable("image_deleting_chunks", {
  hash: text("hash").primaryKey(),
  since: bigint("since", { mode: "number" }).notNull(),
});

/**
 * Chunks a running backup has decided to store or reference but not yet
 * recorded in a block row: a cleanup never takes them. Rows of a backup
 * whose process is gone (pid on host) are dropped by the next cleanup.
 */
export const pendingChunks = pgTable(
  "image_pending_chunks",
  {
    hash: text("hash").notNull(),
    versionUid: text("version_uid").notNull(),
    host: text("host").notNull(),
    pid: integer("pid").notNull(),
    since: bigint("since", { mode: "number" }).notNull(),
  },
  (table) => [primaryKey({ columns: [table.hash, table.versionUid] }), index("image_pending_chunks_version_idx").on(table.versionUid)],
);

/*
 * The volume archive's tables (`blaine volume`, lib/volume): a volume's
 * sessions are image versions of this catalog; these hold what is the
 * archive's own. Their SQL is lib/volume/catalog/volume-catalog.ts's.
 */

/** The archive's settings (source, destination, chunk size, compression, …) and its recovery notes, by key. */
export const volumeSettings = pgTable("volume_settings", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
});

/** The volumes an archive backs up, with where their change tracking stands. */
export const volumeVolumes = pgTable("volume_volumes", {
  name: text("name").primaryKey(),
  /** When it was added (ms since the epoch). */
  added: bigint("added", { mode: "number" }).notNull(),
  /** The session the volume's snapshot and change map count changes from; null: none yet (a full read). */
  trackedSince: text("tracked_since"),
  /** Chunks known changed since `trackedSince` beyond the snapshot's delta (monitor, diff --remap): a bitmap, base64. */
  changeMap: text("change_map"),
});
