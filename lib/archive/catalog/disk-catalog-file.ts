import { Database } from "bun:sqlite";
import { EntriesTable } from "./entries-table.ts";
import { openCatalogDatabase, type OpenCatalogOptions } from "./open.ts";
import { ParitySetsTable } from "./parity-sets-table.ts";

/**
 * A disk catalog opened on a connection of its own, not attached to the
 * host catalog: to upgrade it before it is attached (the migrator works on
 * `main`), to look into a directory's catalog, or to write one anew.
 */
export class DiskCatalogFile {
  readonly #sqlite: Database;
  readonly entries: EntriesTable;
  readonly paritySets: ParitySetsTable;

  private constructor(sqlite: Database) {
    this.#sqlite = sqlite;
    this.entries = new EntriesTable(sqlite, "main");
    this.paritySets = new ParitySetsTable(sqlite, "main");
  }

  /** Opened as a catalog: checked, upgraded unless read-only, created if asked (see openCatalogDatabase). */
  static open(path: string, options: OpenCatalogOptions = {}): DiskCatalogFile {
    return new DiskCatalogFile(openCatalogDatabase(path, "disk", options));
  }

  /** Opened read-only as the file is: no check, no upgrade (a file that may not be a catalog fails at the first query). */
  static openAsIs(path: string): DiskCatalogFile {
    return new DiskCatalogFile(new Database(path, { readonly: true }));
  }

  transaction(fn: () => void): void {
    this.#sqlite.transaction(fn)();
  }

  close(): void {
    this.#sqlite.close();
  }
}
