import type { ArchiveCatalog } from "./archive-catalog.ts";

/**
 * Content this run stored as a hardlink for a new path. When the path that
 * held that content turns out to be gone, the pair was a rename by content
 * (how renames look on pools without stable inodes), and is counted so.
 */
export class RunLinks {
  readonly #catalog: ArchiveCatalog;

  constructor(catalog: ArchiveCatalog) {
    this.#catalog = catalog;
    catalog.sqlite.exec("CREATE TEMP TABLE IF NOT EXISTS run_links (hash TEXT NOT NULL, size INTEGER NOT NULL, change TEXT NOT NULL)");
    catalog.sqlite.exec("DELETE FROM temp.run_links");
  }

  add(hash: string, size: number, change: "new" | "modified"): void {
    this.#catalog.sqlite.query("INSERT INTO temp.run_links (hash, size, change) VALUES (?, ?, ?)").run(hash, size, change);
  }

  /** Takes one new-file link of this content, if any: true means "that was a rename". */
  claimNew(hash: string, size: number): boolean {
    const row = this.#catalog.sqlite
      .query("SELECT rowid FROM temp.run_links WHERE hash = ? AND size = ? AND change = 'new' LIMIT 1")
      .get(hash, size) as { rowid: number } | null;
    if (!row) return false;
    this.#catalog.sqlite.query("DELETE FROM temp.run_links WHERE rowid = ?").run(row.rowid);
    return true;
  }
}
