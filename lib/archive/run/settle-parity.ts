/**
 * End-of-run parity bookkeeping, per mounted disk, after the manifest writer
 * and the deletions: the half of the parity protocol that touches the
 * catalog. Sets made by the parity stage are synced (one syncfs) before
 * their rows are written, so a row always means durable parity. The same
 * pass makes good what a killed run (or a run with --parity off) left:
 * content without a row gets its set checked or made from the data on the
 * disk, and sets whose content is gone from the disk are removed.
 */
import { basename } from "node:path";
import type { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { crashPoint } from "../../crash-point.ts";
import type { MountedDisk } from "../disk/mounted-disk.ts";
import { ParityStore, type ParityPolicy, type StoredSet } from "../disk/parity-store.ts";
import { errorMessage, isOutOfSpace } from "../../errors.ts";
import { syncFileSystem } from "../../fs/atomic.ts";
import { hashAlgorithmOf, hashFile } from "../../hashing.ts";
import type { RunReport } from "./report.ts";

export interface SettleParityOptions {
  readonly catalog: ArchiveCatalog;
  readonly disks: readonly MountedDisk[];
  readonly policy: ParityPolicy | undefined;
  readonly made: ReadonlyMap<string, ReadonlyMap<string, StoredSet>>;
  readonly report: RunReport;
  readonly dryRun?: boolean;
  readonly signal?: AbortSignal;
}

export interface ParitySettled {
  /** Sets recorded as protecting their content. */
  readonly protected: number;
  /** Of those, made here (left unmade by a killed run or an earlier run without parity). */
  readonly madeLate: number;
  /** Sets removed because no path of their content remains on the disk. */
  readonly removed: number;
}

export async function settleParity(options: SettleParityOptions): Promise<ParitySettled> {
  let total = { protected: 0, madeLate: 0, removed: 0 };
  if (options.dryRun) return total;
  for (const disk of options.disks) {
    let settled: ParitySettled;
    try {
      settled = await settleDisk(disk, options);
    } catch (error) {
      if (!isOutOfSpace(error)) throw error;
      // Sets without a row are checked (or made) and recorded by the next run; nothing is lost meanwhile.
      options.report.warn(disk.dir, `parity on disk "${disk.label.label}" not settled: the disk is full (${errorMessage(error)}); the next run settles it`);
      continue;
    }
    total = { protected: total.protected + settled.protected, madeLate: total.madeLate + settled.madeLate, removed: total.removed + settled.removed };
  }
  return total;
}

async function settleDisk(disk: MountedDisk, options: SettleParityOptions): Promise<ParitySettled> {
  const { catalog, report, policy } = options;
  const paritySets = catalog.paritySets(disk.alias);
  const store = new ParityStore(disk.root);
  const madeHere = options.made.get(disk.root) ?? new Map<string, StoredSet>();

  // Content gone from this disk: the row first, then the files (a crash in between leaves files the sweep removes).
  const gone = paritySets.orphaned();
  if (gone.length > 0) {
    catalog.transaction(() => {
      for (const hash of gone) paritySets.remove(hash);
    });
  }
  let removed = 0;
  const stored = store.sweep();
  // Reading every content hash of the disk is the costly part: only when there are sets to check.
  const live = stored.size === 0 ? new Set<string>() : catalog.entries(disk.alias).contentHashes();
  for (const hash of stored) {
    if (!live.has(hash)) {
      store.remove(hash);
      removed++;
    }
  }

  if (!policy) return { protected: 0, madeLate: 0, removed };
  const unprotected = paritySets.unprotected();
  const ready: { hash: string; size: number; set: StoredSet }[] = [];
  let madeLate = 0;
  for (const row of unprotected) {
    options.signal?.throwIfAborted();
    let set = madeHere.get(row.hash) ?? store.check(row.hash, row.size);
    if (!set) {
      const dataPath = disk.layout.dataPath(row.path);
      try {
        // Parity made from damaged data would protect the damage: check the data first.
        const found = hashFile(dataPath, hashAlgorithmOf(row.hash));
        if (found.hash !== row.hash) {
          report.warn(row.path, `not protected by parity: its data on disk "${disk.label.label}" does not match the catalog (run blaine verify)`);
          continue;
        }
        set = await store.create(row.hash, dataPath, basename(row.path), policy, { signal: options.signal });
        madeLate++;
      } catch (error) {
        options.signal?.throwIfAborted();
        if (isOutOfSpace(error)) {
          report.warn(disk.dir, `no parity made for ${unprotected.length - ready.length - madeLate} content(s) on disk "${disk.label.label}": the disk is full; the next run tries again`);
          break;
        }
        report.warn(row.path, `no parity made (${errorMessage(error)}); the next run tries again`);
        continue;
      }
    }
    ready.push({ hash: row.hash, size: row.size, set });
  }
  if (ready.length === 0) return { protected: 0, madeLate, removed };
  // Parity durable first; only then may the catalog call the content protected.
  syncFileSystem(disk.root);
  crashPoint("parity-before-record");
  const now = Date.now();
  catalog.transaction(() => {
    for (const { hash, size, set } of ready) paritySets.record(hash, size, set, now);
  });
  return { protected: ready.length, madeLate, removed };
}
