import { join } from "node:path";
import { ArchiveCatalog } from "../../lib/archive/catalog/archive-catalog.ts";
import type { FileRecord } from "../../lib/archive/catalog/records.ts";
import { tempDir } from "./fixture.ts";

/**
 * A real host catalog (a file with the migrated schema) for unit tests, with
 * its disks, copies and archived rows put in as plain data: the state a run
 * would start from, without running one. The rows go in through SQL on the
 * schema, not through the modules under test.
 */
export function hostCatalog() {
  const dir = tempDir("blaine-unit-");
  const catalog = ArchiveCatalog.open(join(dir.path, "host.db"), { create: true });
  catalog.archiveId(true);
  let disks = 0;
  return {
    catalog,
    dir: dir.path,
    /** A disk with `copies` physical copies: its id and its copies' ids, in the order they were made. */
    addDisk(label: string, copies = 1): { diskId: string; copyIds: string[] } {
      const diskId = `disk-${label}`;
      const now = ++disks;
      catalog.sqlite.query("INSERT INTO disks (id, label, created_at) VALUES (?, ?, ?)").run(diskId, label, now);
      const copyIds = Array.from({ length: copies }, (_, i) => `${diskId}-copy${i + 1}`);
      copyIds.forEach((copyId, i) => catalog.sqlite.query("INSERT INTO disk_copies (id, disk_id, created_at) VALUES (?, ?, ?)").run(copyId, diskId, now * 100 + i));
      return { diskId, copyIds };
    },
    /** An archived path held by disk `diskId`. */
    archive(record: FileRecord, diskId: string): void {
      catalog.sqlite
        .query(
          `INSERT INTO files (path, kind, size, mtime_ms, mtime_nsec, mode, dev, ino, hash, link_target, disk_id, archived_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`,
        )
        .run(record.path, record.kind, record.size, record.mtimeMs, record.mtimeNsec ?? null, record.mode, record.dev, record.ino, record.hash, record.linkTarget, diskId);
    },
    close(): void {
      catalog.close();
      dir.cleanup();
    },
  };
}
export type HostCatalogFixture = ReturnType<typeof hostCatalog>;

/**
 * The host catalog's rows as a test reads them back: straight from the
 * schema, so a test checks outcomes whichever module owns the SQL.
 */
export function archivedRow(catalog: ArchiveCatalog, path: string): { path: string; dev: number; ino: number; hash: string; diskId: string } | undefined {
  return (
    (catalog.sqlite.query("SELECT path, dev, ino, hash, disk_id AS diskId FROM main.files WHERE path = ?").get(path) as {
      path: string;
      dev: number;
      ino: number;
      hash: string;
      diskId: string;
    } | null) ?? undefined
  );
}

/** Every archived path, in order. */
export function archivedPaths(catalog: ArchiveCatalog): string[] {
  return (catalog.sqlite.query("SELECT path FROM main.files ORDER BY path").all() as { path: string }[]).map((row) => row.path);
}
