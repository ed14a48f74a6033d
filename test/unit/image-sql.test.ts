import { afterEach, beforeEach, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ImageCatalog } from "../../lib/image/catalog/image-catalog.ts";
import { openImageSql, SQLITE_PAGE_BYTES } from "../../lib/image/catalog/sql.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync("/tmp/blaine-image-sql-");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const pageSizeOf = (file: string) => {
  const db = new Database(file, { readonly: true });
  try {
    return (db.query("PRAGMA page_size").get() as { page_size: number }).page_size;
  } finally {
    db.close();
  }
};

test("TestNewCatalogPageSize: a new SQLite image catalog has large pages; one made before keeps its own and works", async () => {
  const fresh = join(dir, "fresh.db");
  const sql = await openImageSql(fresh, { create: true });
  await sql.close();
  expect(pageSizeOf(fresh)).toBe(SQLITE_PAGE_BYTES);

  // A file whose pages were set before this Blaine opened it (4 KiB, SQLite's default): migrated, written, read.
  const older = join(dir, "older.db");
  const db = new Database(older, { create: true });
  db.exec("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL");
  db.close();
  expect(pageSizeOf(older)).toBe(4096);
  const catalog = new ImageCatalog(await openImageSql(older, { create: false }));
  try {
    await catalog.createVersion({ uid: "v1", name: "vm", snapshot: "", size: 8192, blockSize: 4096, labels: {}, date: Date.now(), baseUid: null, inheritsUid: null });
    await catalog.writeBlocks("v1", [{ idx: 0, hash: "a".repeat(64), size: 4096, valid: true }]);
    const rows = [];
    for await (const row of catalog.allBlocks("v1")) rows.push(row);
    expect(rows).toEqual([{ idx: 0, hash: "a".repeat(64), size: 4096, valid: true }]);
  } finally {
    await catalog.sql.close();
  }
  expect(pageSizeOf(older)).toBe(4096);
});
