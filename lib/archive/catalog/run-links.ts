import type { ArchiveCatalog } from "./archive-catalog.ts";

/**
 * What a run learns about renames by content (how renames look on pools
 * without stable inodes). Content it stored as a hardlink for a new path:
 * when the path that held that content turns out to be gone, the pair was a
 * rename, and is counted so. And content it could not store (no room, a
 * read failure): a path that is gone and held content like it may have
 * been moved to the file that was not stored, so it must stay archived.
 * And for a dry run, what it would rename and copy, so that it counts
 * renames as the real run will.
 */
export class RunLinks {
  readonly #catalog: ArchiveCatalog;

  constructor(catalog: ArchiveCatalog) {
    this.#catalog = catalog;
    catalog.sqlite.exec("CREATE TEMP TABLE IF NOT EXISTS run_links (hash TEXT NOT NULL, size INTEGER NOT NULL, change TEXT NOT NULL)");
    catalog.sqlite.exec("DELETE FROM temp.run_links");
    catalog.sqlite.exec("CREATE TEMP TABLE IF NOT EXISTS run_not_stored (hash TEXT, size INTEGER NOT NULL)");
    catalog.sqlite.exec("DELETE FROM temp.run_not_stored");
    catalog.sqlite.exec("CREATE TEMP TABLE IF NOT EXISTS dry_run_plan (path TEXT NOT NULL, size INTEGER, renamed_away INTEGER NOT NULL)");
    catalog.sqlite.exec("DELETE FROM temp.dry_run_plan");
  }

  /**
   * A dry run changes nothing, so the old names of its renames are still in
   * the catalog when deletions are counted: each is noted here, and is no
   * deletion.
   */
  plannedRenameFrom(path: string): void {
    this.#catalog.sqlite.query("INSERT INTO temp.dry_run_plan (path, size, renamed_away) VALUES (?, NULL, 1)").run(path);
  }

  renamedAwayInDryRun(path: string): boolean {
    return this.#catalog.sqlite.query("SELECT 1 FROM temp.dry_run_plan WHERE path = ? AND renamed_away = 1 LIMIT 1").get(path) !== null;
  }

  /** A dry run's planned copy of a new path (unread: its content may be a vanished path's, a rename by content). */
  plannedCopy(path: string, size: number): void {
    this.#catalog.sqlite.query("INSERT INTO temp.dry_run_plan (path, size, renamed_away) VALUES (?, ?, 0)").run(path, size);
  }

  /** Up to 8 planned copies of this size not yet taken for a rename. */
  plannedCopiesOfSize(size: number): string[] {
    return (this.#catalog.sqlite.query("SELECT path FROM temp.dry_run_plan WHERE size = ? AND renamed_away = 0 LIMIT 8").all(size) as { path: string }[]).map((row) => row.path);
  }

  /** That planned copy is the new name of a vanished path (claimed until the deletions are applied, see releaseClaims). */
  claimPlannedCopy(path: string): void {
    this.#catalog.sqlite.query("UPDATE temp.dry_run_plan SET renamed_away = 2 WHERE path = ? AND renamed_away = 0").run(path);
  }

  add(hash: string, size: number, change: "new" | "modified"): void {
    this.#catalog.sqlite.query("INSERT INTO temp.run_links (hash, size, change) VALUES (?, ?, ?)").run(hash, size, change);
  }

  /** Claims one new-file link of this content, if any: true means "that was a rename" (once the deletions are applied, see releaseClaims). */
  claimNew(hash: string, size: number): boolean {
    const row = this.#catalog.sqlite
      .query("SELECT rowid FROM temp.run_links WHERE hash = ? AND size = ? AND change = 'new' LIMIT 1")
      .get(hash, size) as { rowid: number } | null;
    if (!row) return false;
    this.#catalog.sqlite.query("UPDATE temp.run_links SET change = 'claimed' WHERE rowid = ?").run(row.rowid);
    return true;
  }

  /** The deletions were not applied (a safety stop): what they claimed is new after all. */
  releaseClaims(): void {
    this.#catalog.sqlite.exec("UPDATE temp.run_links SET change = 'new' WHERE change = 'claimed'");
    this.#catalog.sqlite.exec("UPDATE temp.dry_run_plan SET renamed_away = 0 WHERE renamed_away = 2");
  }

  /** New paths stored as hardlinks whose content no vanished path claimed (see claimNew): new files, not renames. */
  unclaimedNew(): number {
    return (this.#catalog.sqlite.query("SELECT count(*) AS n FROM temp.run_links WHERE change = 'new'").get() as { n: number }).n;
  }

  /** A dry run's planned copies of new paths that no vanished path claimed: new files, and the bytes they would copy. */
  unclaimedPlannedCopies(): { files: number; bytes: number } {
    return this.#catalog.sqlite.query("SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM temp.dry_run_plan WHERE renamed_away = 0").get() as { files: number; bytes: number };
  }

  /** A file of this size (and hash, when it was read) that the run could not store. */
  notStored(size: number, hash: string | undefined): void {
    this.#catalog.sqlite.query("INSERT INTO temp.run_not_stored (hash, size) VALUES (?, ?)").run(hash || null, size);
  }

  /**
   * Whether an archived file that is gone from its path may be the content
   * of a file the run could not store (same size, and the same hash unless
   * that file was not read): then it is not deleted.
   */
  mayBeUnstored(hash: string, size: number): boolean {
    return (
      this.#catalog.sqlite.query("SELECT 1 FROM temp.run_not_stored WHERE size = ? AND (hash IS NULL OR hash = ?) LIMIT 1").get(size, hash) !== null
    );
  }
}
