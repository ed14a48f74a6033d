import type { Database } from "bun:sqlite";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BlaineError } from "../errors.ts";

/**
 * Which schema a catalog has, for every product's catalogs: drizzle-kit's
 * journal in a migrations folder lists the migrations this Blaine knows,
 * and a catalog records the ones applied to it (by their `when`, drizzle's
 * `created_at`). A catalog holding a migration this Blaine does not know
 * was written by a newer one: refused, never migrated or written.
 */

interface JournalFile {
  entries: { idx: number; tag: string; when: number }[];
}

/** The `when` of every migration in `folder` (drizzle-kit's meta/_journal.json). */
export function knownMigrations(folder: string): number[] {
  const journal = JSON.parse(readFileSync(join(folder, "meta", "_journal.json"), "utf8")) as JournalFile;
  return journal.entries.map((entry) => entry.when);
}

/**
 * Compares what a catalog has applied with what `folder` holds: throws for a
 * catalog written by a newer Blaine; returns how many known migrations it
 * still lacks.
 */
export function missingMigrations(applied: readonly number[], folder: string, name: string): number {
  const known = knownMigrations(folder);
  const knownTimes = new Set(known);
  if (applied.some((when) => !knownTimes.has(Number(when)))) {
    throw new BlaineError(`${name} was written by a newer version of Blaine; upgrade Blaine to use it`);
  }
  return Math.max(0, known.length - applied.length);
}

/** The migrations applied to an SQLite catalog; undefined when it has no migrations table. */
export function appliedSqliteMigrations(sqlite: Database): number[] | undefined {
  const hasTable = sqlite.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '__drizzle_migrations'").get();
  if (!hasTable) return undefined;
  return (sqlite.query("SELECT created_at AS createdAt FROM __drizzle_migrations").all() as { createdAt: number }[]).map((row) => Number(row.createdAt));
}

/**
 * drizzle-kit's migrations applied by drizzle's migrator. Loaded only when a
 * catalog needs them: drizzle's modules take longer to load than a whole
 * unchanged re-run of a small tree spends on anything else.
 */
export function applySqliteMigrations(sqlite: Database, folder: string): void {
  const { drizzle } = require("drizzle-orm/bun-sqlite") as typeof import("drizzle-orm/bun-sqlite");
  const { migrate } = require("drizzle-orm/bun-sqlite/migrator") as typeof import("drizzle-orm/bun-sqlite/migrator");
  migrate(drizzle(sqlite), { migrationsFolder: folder });
}
