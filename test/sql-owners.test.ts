import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";

/**
 * Every SQL statement of the file archive is in a module next to its schema
 * (lib/archive/catalog/), one owner per table group; commands, stages, the
 * run and the disk model call their methods. Only these modules reach a
 * bun:sqlite connection, each for the reason given.
 */
const SQL_OWNERS: Record<string, string> = {
  "lib/archive/catalog/files-table.ts": "the host catalog's files",
  "lib/archive/catalog/disks-table.ts": "the archive row, disks and disk copies",
  "lib/archive/catalog/runs-table.ts": "runs",
  "lib/archive/catalog/deferred-actions-table.ts": "deferred actions",
  "lib/archive/catalog/entries-table.ts": "a disk catalog's entries and intents",
  "lib/archive/catalog/parity-sets-table.ts": "a disk catalog's parity sets",
  "lib/archive/catalog/content-holders.ts": "who holds a content: the statement the files and entries tables share",
  "lib/archive/catalog/run-links.ts": "a run's own temp tables",
  "lib/archive/catalog/archive-catalog.ts": "the host catalog's connection: attach, detach, transactions, locking, snapshots",
  "lib/archive/catalog/disk-catalog-file.ts": "a disk catalog opened on a connection of its own",
  "lib/archive/catalog/open.ts": "opening a catalog file: pragmas, migrations, integrity check",
  "lib/archive/catalog/catalog-errors.ts": "probes of a catalog that failed, for the error's words",
};

/** What reaches or uses a bun:sqlite connection, and how the report names it. */
const SQL_USES: readonly [RegExp, string][] = [
  [/from\s+"bun:sqlite"/, "imports bun:sqlite"],
  [/\.sqlite\b/, "reaches the catalog's connection (.sqlite)"],
  [/\bnew Database\(|\bopenCatalogDatabase\(/, "opens an SQLite connection"],
  [/\.(query|prepare)\(/, "prepares SQL"],
  [/\b(sqlite|db|database|own|host|copy|source)\.(exec|run|transaction)\(/, "runs SQL on a connection"],
];

const ROOT = join(import.meta.dir, "..");

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return tsFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** The lines of `text` (of file `name`) that reach or use a connection, as "name:line: what". */
function sqlUses(name: string, text: string): string[] {
  const found: string[] = [];
  for (const [i, line] of text.split("\n").entries()) {
    const code = line.trim();
    if (code.startsWith("//") || code.startsWith("*") || code.startsWith("/*")) continue;
    for (const [pattern, what] of SQL_USES) {
      if (pattern.test(line)) found.push(`${name}:${i + 1}: ${what}: ${code}`);
    }
  }
  return found;
}

function sqlOutsideOwners(): string[] {
  return tsFiles(join(ROOT, "lib", "archive"))
    .map((path) => relative(ROOT, path))
    .filter((name) => !(name in SQL_OWNERS))
    .flatMap((name) => sqlUses(name, readFileSync(join(ROOT, name), "utf8")));
}

describe("SQL owners", () => {
  test("no module of the file archive but the table modules of lib/archive/catalog reaches a bun:sqlite connection or runs SQL", () => {
    expect(sqlOutsideOwners()).toEqual([]);
  });

  test("every owner listed exists", () => {
    const files = new Set(tsFiles(join(ROOT, "lib", "archive")).map((path) => relative(ROOT, path)));
    expect(Object.keys(SQL_OWNERS).filter((name) => !files.has(name))).toEqual([]);
  });

  test("the check names each way of reaching SQL", () => {
    const uses = (line: string) => sqlUses("x.ts", line).map((use) => use.split(": ")[1]);
    expect(uses('import type { Database } from "bun:sqlite";')).toEqual(["imports bun:sqlite"]);
    expect(uses("const row = catalog.sqlite.query(\"SELECT 1\").get();")).toEqual(["reaches the catalog's connection (.sqlite)", "prepares SQL"]);
    expect(uses('const own = new Database(path, { readonly: true });')).toEqual(["opens an SQLite connection"]);
    expect(uses('const disk = openCatalogDatabase(path, "disk");')).toEqual(["opens an SQLite connection"]);
    expect(uses("const insert = db.prepare(`INSERT INTO x VALUES (?)`);")).toEqual(["prepares SQL"]);
    expect(uses('db.exec("PRAGMA foreign_keys = OFF");')).toEqual(["runs SQL on a connection"]);
    expect(uses('own.run("DELETE FROM entries");')).toEqual(["runs SQL on a connection"]);
    // What is not SQL: a regular expression's exec, a table module's method, a comment.
    expect(uses("const match = /^(\\d+)%$/.exec(text);")).toEqual([]);
    expect(uses("catalog.disks.markFull(id);")).toEqual([]);
    expect(uses("  // catalog.sqlite.query is for the table modules alone")).toEqual([]);
  });
});
