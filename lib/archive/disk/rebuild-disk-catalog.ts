import { existsSync, lstatSync, readdirSync, renameSync, rmSync, type Stats } from "node:fs";
import type { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { DiskCatalogFile } from "../catalog/disk-catalog-file.ts";
import type { EntryRow } from "../catalog/entries-table.ts";
import { checkCatalogIntegrity } from "../catalog/open.ts";
import { errnoCode } from "../../errors.ts";
import { fsyncDirectory, syncFileSystem } from "../../fs/atomic.ts";
import { fsPath, readLinkText } from "../../fs/byte-names.ts";
import { hashAlgorithmOf, hashFile, hashLinkTarget, type HashAlgorithm } from "../../hashing.ts";
import { DeferredQueue } from "../catalog/deferred-actions-table.ts";
import type { DiskLabel } from "./disk-label.ts";
import type { DiskLayout } from "./layout.ts";
import { ParityStore } from "./parity-store.ts";

export interface RebuiltDiskCatalog {
  /** Rows written: every path the host catalog places on the disk, and what its queued actions still need. */
  readonly entries: number;
  /** Parity sets found whole on the disk and recorded again. */
  readonly paritySets: number;
  /** Paths whose data on the disk differs from the catalog (recorded as the catalog says: verify --repair mends them). */
  readonly damaged: readonly string[];
  /** Paths the catalog places on the disk that are not there. */
  readonly missing: readonly string[];
  /** Where the unreadable catalog was moved (never deleted), if there was a file. */
  readonly keptAside: string | null;
}

/** Whether a disk catalog opens (upgraded if older) and passes SQLite's integrity check. */
export function diskCatalogIsWhole(layout: DiskLayout): boolean {
  if (!existsSync(layout.catalog)) return false;
  try {
    return checkCatalogIntegrity(layout.catalog, "disk") === "ok";
  } catch {
    return false;
  }
}

/**
 * How many files the host catalog places on a copy whose own catalog holds
 * none, while nothing is queued for that copy (a twin still being filled has
 * an empty catalog and a queue): a catalog made anew empty (as Blaine did
 * before it refused to), which disowns the disk's data although it is
 * whole. Undefined when the catalog holds entries, or there is nothing to hold.
 */
export function disownedFiles(host: ArchiveCatalog, label: DiskLabel, diskCatalogPath: string): number | undefined {
  const own = DiskCatalogFile.openAsIs(diskCatalogPath);
  try {
    if (own.entries.any()) return undefined;
  } finally {
    own.close();
  }
  const pending = new DeferredQueue(host).anyFor(label.copyId);
  const n = host.files.countOnDisk(label.diskId);
  return n > 0 && !pending ? n : undefined;
}

/**
 * Makes a disk's catalog again from the host catalog and the data on the
 * disk, for a disk whose own catalog was lost or cannot be read. The host
 * catalog says what this copy holds, except for the paths its queue of
 * deferred actions will still change: those are taken as they are on the
 * disk, so the queue applies as it would have. Every path is read and
 * hashed (hardlinks once): data that differs keeps the catalog's record, so
 * verify calls it corrupt and `verify --repair` mends it from its parity.
 * Parity sets found whole are recorded again. The catalog is written to a
 * temp file and renamed into place; the unreadable one (and any journal of
 * it, which must never be applied to the new file) is kept beside it.
 * Temps of killed runs are removed: their intents were in the lost catalog.
 * The caller holds the host catalog's writer lock.
 */
export function rebuildDiskCatalog(catalog: ArchiveCatalog, label: DiskLabel, layout: DiskLayout): RebuiltDiskCatalog {
  const rows = catalog.files.ofDisk(label.diskId);
  const queued = new DeferredQueue(catalog).forCopy(label.copyId);
  const changing = new Set<string>();
  for (const action of queued) {
    changing.add(action.path);
    if (action.fromPath) changing.add(action.fromPath);
  }
  const anyHash = rows[0]?.hash ?? queued.find((action) => action.record)?.record?.hash;
  const archiveAlgorithm: HashAlgorithm = anyHash ? hashAlgorithmOf(anyHash) : "sha1";
  const hashes = new Map<string, string>();
  const contentOf = (path: string, stats: Stats, algorithm: HashAlgorithm): string => {
    if (stats.isSymbolicLink()) return hashLinkTarget(algorithm, readLinkText(layout.dataPath(path)));
    // Hardlinked data is read once.
    const key = `${stats.dev}:${stats.ino}:${algorithm}`;
    let hash = hashes.get(key);
    if (hash === undefined) {
      hash = hashFile(layout.dataPath(path), algorithm).hash;
      hashes.set(key, hash);
    }
    return hash;
  };
  const statOf = (path: string): Stats | undefined => {
    try {
      return lstatSync(fsPath(layout.dataPath(path)));
    } catch (error) {
      if (errnoCode(error) === "ENOENT" || errnoCode(error) === "ENOTDIR") return undefined;
      throw error;
    }
  };
  const now = Date.now();
  /** A path as it is on the disk now (one its queued actions will change). */
  const asOnDisk = (path: string, algorithm: HashAlgorithm): EntryRow | undefined => {
    const stats = statOf(path);
    if (!stats || !(stats.isFile() || stats.isSymbolicLink())) return undefined;
    const kind = stats.isSymbolicLink() ? "symlink" : "file";
    const linkTarget = kind === "symlink" ? readLinkText(layout.dataPath(path)) : null;
    return { path, kind, size: stats.size, mtimeMs: stats.mtimeMs, mtimeNsec: null, mode: stats.mode, hash: contentOf(path, stats, algorithm), linkTarget, archivedAt: now };
  };

  const entries: EntryRow[] = [];
  const damaged: string[] = [];
  const missing: string[] = [];
  const written = new Set<string>();
  for (const row of rows) {
    const algorithm = hashAlgorithmOf(row.hash);
    if (changing.has(row.path)) continue;
    const stats = statOf(row.path);
    if (!stats) missing.push(row.path);
    else {
      const kind = stats.isSymbolicLink() ? "symlink" : stats.isFile() ? "file" : "other";
      if (kind !== row.kind || contentOf(row.path, stats, algorithm) !== row.hash) damaged.push(row.path);
    }
    const { path, kind, size, mtimeMs, mtimeNsec, mode, hash, linkTarget, archivedAt } = row;
    entries.push({ path, kind, size, mtimeMs, mtimeNsec: mtimeNsec ?? null, mode, hash, linkTarget, archivedAt });
    written.add(row.path);
  }
  for (const path of changing) {
    if (written.has(path)) continue;
    const entry = asOnDisk(path, archiveAlgorithm);
    if (entry) {
      entries.push(entry);
      written.add(path);
    }
  }

  const temp = `${layout.catalog}.rebuild-tmp`;
  rmSync(temp, { force: true });
  rmSync(`${temp}-journal`, { force: true });
  const rebuilt = DiskCatalogFile.open(temp, { create: true });
  let paritySets = 0;
  try {
    const store = new ParityStore(layout.root);
    const contents = new Map<string, number>();
    for (const entry of entries) if (entry.kind === "file" && entry.size > 0) contents.set(entry.hash, entry.size);
    // A set is checked whole before it counts (as a run's settling step does for sets it finds without a row).
    const sets = [...contents].flatMap(([hash, size]) => {
      const set = store.check(hash, size);
      return set ? [{ hash, size, set }] : [];
    });
    rebuilt.transaction(() => {
      for (const entry of entries) rebuilt.entries.insert(entry);
      for (const { hash, size, set } of sets) rebuilt.paritySets.record(hash, size, set, now);
    });
    paritySets = sets.length;
  } finally {
    rebuilt.close();
  }
  syncFileSystem(temp);

  let keptAside: string | null = null;
  const aside = `${layout.catalog}.damaged-${new Date(now).toISOString().replaceAll(":", "")}`;
  for (const suffix of ["", "-journal", "-wal", "-shm"]) {
    if (!existsSync(layout.catalog + suffix)) continue;
    renameSync(layout.catalog + suffix, aside + suffix);
    if (suffix === "") keptAside = aside;
  }
  renameSync(temp, layout.catalog);
  fsyncDirectory(layout.meta);
  if (existsSync(layout.tmp)) for (const name of readdirSync(layout.tmp)) rmSync(`${layout.tmp}/${name}`, { recursive: true, force: true });
  return { entries: entries.length, paritySets, damaged, missing, keptAside };
}
