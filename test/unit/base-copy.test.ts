import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { BaseCopy } from "../../lib/image/base-copy.ts";
import { ImageCatalog, type BlockRow } from "../../lib/image/catalog/image-catalog.ts";
import { openImageSql } from "../../lib/image/catalog/sql.ts";

/** A base version of `count` block rows in a real SQLite catalog, and a new version made from it. */
async function catalogWithBase(file: string, count: number): Promise<{ catalog: ImageCatalog; baseRows: BlockRow[] }> {
  const catalog = new ImageCatalog(await openImageSql(file, { create: true }));
  const version = { name: "vm", snapshot: "", size: count * 4096, blockSize: 4096, labels: {}, date: Date.now() };
  await catalog.createVersion({ ...version, uid: "base", baseUid: null });
  const baseRows = Array.from({ length: count }, (_, idx) => ({ idx, hash: idx.toString(16).padStart(64, "0"), size: 4096, valid: true }));
  await catalog.writeBlocks("base", baseRows);
  await catalog.createVersion({ ...version, uid: "new", baseUid: "base" });
  return { catalog, baseRows };
}

async function rowsOf(catalog: ImageCatalog, uid: string): Promise<BlockRow[]> {
  const rows: BlockRow[] = [];
  for await (const row of catalog.allBlocks(uid)) rows.push(row);
  return rows;
}

describe("BaseCopy on SQLite", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync("/tmp/blaine-base-copy-");
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  // A small list is copied on the backup's thread (no thread to start); a large one on a thread of its own.
  test.each([
    ["on the backup's thread (a list of at most hereRows)", 2500],
    ["on a thread of its own (a list longer than hereRows)", 0],
  ])("TestBaseCopyWhole: %s, every base row the backup did not write, the backup's own rows kept", async (_, hereRows) => {
    const { catalog, baseRows } = await catalogWithBase(join(dir, "images.db"), 2500);
    try {
      // The backup wrote block 7 before the copy reached it: that row stays.
      const written = { idx: 7, hash: "f".repeat(64), size: 4096, valid: true };
      await catalog.writeBlocks("new", [written]);
      const copy = new BaseCopy(catalog, "new", "base", 2500, { rowsPerCopy: 1024, hereRows });
      // The backup's own transactions go on while the copy runs.
      await catalog.writeBlocks("new", [{ idx: 2499, hash: null, size: 4096, valid: true }]);
      await copy.done;
      const expected = baseRows.map((row) => (row.idx === 7 ? written : row.idx === 2499 ? { ...row, hash: null } : row));
      expect(await rowsOf(catalog, "new")).toEqual(expected);
    } finally {
      await catalog.close();
    }
  });

  test("TestWritersTakeTurns: the copy's range, the backup's claims and its block rows begun in the same turn on one connection each run whole", async () => {
    const { catalog, baseRows } = await catalogWithBase(join(dir, "images.db"), 2500);
    try {
      // On the backup's thread the copy's transactions share the connection with the pipeline's: begun while another
      // is open, SQLite refused the second BEGIN ("cannot start a transaction within a transaction").
      const written = { idx: 7, hash: "f".repeat(64), size: 4096, valid: true };
      const outcomes = await Promise.allSettled([
        catalog.writeBlocks("new", [written], [{ hash: written.hash, size: 4096 }]),
        catalog.copyBaseBlocks("new", "base", 0, 2500),
        catalog.claimHashes("new", ["e".repeat(64)], { host: "test", pid: process.pid }),
      ]);
      expect(outcomes.map((outcome) => (outcome.status === "rejected" ? String(outcome.reason) : "done"))).toEqual(["done", "done", "done"]);
      expect(await rowsOf(catalog, "new")).toEqual(baseRows.map((row) => (row.idx === 7 ? written : row)));
    } finally {
      await catalog.close();
    }
  });

  test("TestBaseRemovedDuringCopy: a base removed before the copy fails it, naming the base", async () => {
    const { catalog } = await catalogWithBase(join(dir, "images.db"), 100);
    try {
      await catalog.removeVersion("base");
      const copy = new BaseCopy(catalog, "new", "base", 100);
      await expect(copy.done).rejects.toThrow("version base, the base of version new, was removed");
    } finally {
      await catalog.close();
    }
  });
});
