import type { Database, Statement } from "bun:sqlite";
import { sameHash } from "./content-holders.ts";

/** What the catalog records of a whole PAR2 set (see ParityStore). */
export interface ParitySetShape {
  readonly sliceSize: number;
  readonly recoverySlices: number;
  readonly files: number;
  readonly bytes: number;
}

/**
 * A disk catalog's `parity_sets`: one row per content whose PAR2 set is
 * complete and durable on the disk. `schema` is the disk catalog's name on
 * the connection: its alias when attached to the host catalog, `main` when
 * opened on its own.
 */
export class ParitySetsTable {
  readonly #sqlite: Database;
  readonly #schema: string;
  #has: Statement | undefined;

  constructor(sqlite: Database, schema: string) {
    this.#sqlite = sqlite;
    this.#schema = schema;
  }

  /** Whether the content has its set (asked once per new content of a run: prepared once). */
  has(hash: string): boolean {
    this.#has ??= this.#sqlite.prepare(`SELECT 1 FROM ${this.#schema}.parity_sets WHERE hash = ?`);
    return this.#has.get(hash) !== null;
  }

  /** Every set recorded, for verify. */
  all(): ({ hash: string; size: number } & Pick<ParitySetShape, "sliceSize" | "recoverySlices">)[] {
    return this.#sqlite.query(`SELECT hash, size, slice_size AS sliceSize, recovery_slices AS recoverySlices FROM ${this.#schema}.parity_sets`).all() as ({
      hash: string;
      size: number;
    } & Pick<ParitySetShape, "sliceSize" | "recoverySlices">)[];
  }

  /** Contents with a set that no file of the disk holds any more. */
  orphaned(): string[] {
    const s = this.#schema;
    return (
      this.#sqlite
        .query(`SELECT p.hash AS hash FROM ${s}.parity_sets p WHERE NOT EXISTS (SELECT 1 FROM ${s}.entries e WHERE ${sameHash("e.hash", "p.hash")} AND e.kind = 'file')`)
        .all() as { hash: string }[]
    ).map((row) => row.hash);
  }

  /** Contents of the disk (not empty) without a set, each with its first path. */
  unprotected(): { hash: string; size: number; path: string }[] {
    const s = this.#schema;
    return this.#sqlite
      .query(
        `SELECT e.hash AS hash, e.size AS size, MIN(e.path) AS path FROM ${s}.entries e
          WHERE e.kind = 'file' AND e.size > 0
            AND NOT EXISTS (SELECT 1 FROM ${s}.parity_sets p WHERE p.hash = e.hash)
          GROUP BY e.hash, e.size`,
      )
      .all() as { hash: string; size: number; path: string }[];
  }

  /** How many contents of the disk (not empty) have no set. */
  countUnprotected(): number {
    const s = this.#schema;
    return (
      this.#sqlite
        .query(
          `SELECT count(DISTINCT e.hash) AS n FROM ${s}.entries e
            WHERE e.kind = 'file' AND e.size > 0 AND NOT EXISTS (SELECT 1 FROM ${s}.parity_sets p WHERE p.hash = e.hash)`,
        )
        .get() as { n: number }
    ).n;
  }

  /** Records a whole set (replacing an older row of the content). The caller's transaction holds it. */
  record(hash: string, size: number, set: ParitySetShape, now: number): void {
    this.#sqlite
      .query(`INSERT OR REPLACE INTO ${this.#schema}.parity_sets (hash, size, slice_size, recovery_slices, files, bytes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`)
      .run(hash, size, set.sliceSize, set.recoverySlices, set.files, set.bytes, now);
  }

  remove(hash: string): void {
    this.#sqlite.query(`DELETE FROM ${this.#schema}.parity_sets WHERE hash = ?`).run(hash);
  }
}
