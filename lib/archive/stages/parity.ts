import { rmSync } from "node:fs";
import { basename, join } from "node:path";
import type { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import type { ParitySetsTable } from "../catalog/parity-sets-table.ts";
import type { MountedDisk } from "../disk/mounted-disk.ts";
import { ParityStore, type ParityPolicy, type StoredSet } from "../disk/parity-store.ts";
import { errnoCode, errorMessage } from "../../errors.ts";
import { mapBounded } from "../../pipeline/bounded.ts";
import type { PlannedFile, StoredFile } from "./types.ts";
import type { RunReport } from "../run/report.ts";
import type { SpaceBudget } from "../disk/space-budget.ts";
import { reportNoRoom } from "./copier.ts";

export interface ParityOptions {
  /** Redundancy and engine; undefined when parity is off (items pass through). */
  readonly policy: ParityPolicy | undefined;
  /** Disks a copied temp file may be on (each item says which: StoredFile.disk). */
  readonly disks: readonly MountedDisk[];
  readonly catalog: ArchiveCatalog;
  readonly report: RunReport;
  /** Sets made by this run, per disk root: recorded in the catalog once durable (see settleParity). */
  readonly made: Map<string, Map<string, StoredSet>>;
  /**
   * Files worked on at once. Small files are encoded in this thread, so a few
   * at a time overlap one file's reads with another's hashing; large files
   * spread over worker threads by themselves.
   * @default 4
   */
  readonly concurrency?: number;
  /** The run's space budget: holds each copy's parity room until its set is made (see SpaceBudget.releaseParity). */
  readonly space?: SpaceBudget;
  /** A copy dropped for lack of room for its set: its content is not stored (an archived path of that content stays). */
  readonly onNotStored?: (item: PlannedFile) => void;
  /** Called when the stage is put into a pipeline: the run notes that its pipeline makes parity (else it warns, and makes the sets after). */
  readonly onStart?: () => void;
  readonly dryRun?: boolean;
  readonly signal?: AbortSignal;
}

/**
 * The parity stage, between copier and manifest writer: makes the PAR2
 * recovery set of each newly copied content from its temp file (already on
 * the disk, so the source is not read again) into the disk's parity store.
 * One set per content: content the disk already protects, or that this run
 * already protected, is passed on untouched, as are links, renames and
 * symlinks. A set that cannot be made is a warning, not a lost file: the
 * file is archived unprotected and the next run makes its parity.
 */
export function parity(items: AsyncIterable<StoredFile>, options: ParityOptions): AsyncIterable<StoredFile> {
  const { policy } = options;
  options.onStart?.();
  // Nothing to do: the items themselves, without a generator passing each one on.
  if (!policy || options.dryRun) return items;
  return protect(items, policy, options);
}

async function* protect(items: AsyncIterable<StoredFile>, policy: ParityPolicy, options: ParityOptions): AsyncGenerator<StoredFile> {
  const inFlight = new Map<string, Promise<void>>();
  const paritySets = new Map(options.disks.map((disk) => [disk.root, options.catalog.paritySets(disk.alias)]));
  const protectOne = async (item: StoredFile): Promise<StoredFile | undefined> => {
    try {
      return await protectCopy(item, policy, options, inFlight, paritySets);
    } finally {
      if (item.tempName) options.space?.releaseParity(item.tempName);
    }
  };
  for await (const item of mapBounded(items, protectOne, { concurrency: options.concurrency ?? 4, signal: options.signal })) {
    if (item) yield item;
  }
}

/**
 * Makes the set of one copied content, or passes the item on as it is. A
 * disk that has no room for the set (filled from outside) takes no more new
 * data: the copy is dropped with its temp and counted as not stored, since
 * data the run cannot protect is data it would record half done.
 */
async function protectCopy(
  item: StoredFile,
  policy: ParityPolicy,
  options: ParityOptions,
  inFlight: Map<string, Promise<void>>,
  paritySets: ReadonlyMap<string, ParitySetsTable>,
): Promise<StoredFile | undefined> {
  if (item.action !== "copy" || !item.tempName || item.size === 0) return item;
  const disk = item.disk;
  if (!disk) return item;
  const made = options.made.get(disk.root) ?? new Map<string, StoredSet>();
  options.made.set(disk.root, made);
  const key = `${disk.root}\0${item.hash}`;
  const pending = inFlight.get(key);
  if (pending) {
    await pending;
    return item;
  }
  if (made.has(item.hash) || paritySets.get(disk.root)?.has(item.hash)) return item;
  let noRoom = false;
  const work = (async () => {
    options.report.parityPlanned(item.size);
    let encoded = 0;
    try {
      const onProgress = (bytes: number) => {
        encoded += bytes;
        options.report.parityDone(bytes);
      };
      const set = await new ParityStore(disk.root).create(item.hash, join(disk.layout.tmp, item.tempName!), basename(item.path), policy, {
        signal: options.signal, onProgress, checksums: item.checksums,
      });
      made.set(item.hash, set);
    } catch (error) {
      options.signal?.throwIfAborted();
      // What was planned for it is done, one way or the other.
      options.report.parityDone(Math.max(0, item.size - encoded));
      if (errnoCode(error) === "ENOSPC" && options.space) noRoom = true;
      else options.report.warn(item.path, `no parity made (${errorMessage(error)}); the next run tries again`);
    }
  })();
  inFlight.set(key, work);
  try {
    await work;
  } finally {
    inFlight.delete(key);
  }
  if (!noRoom) return item;
  rmSync(join(disk.layout.tmp, item.tempName), { force: true });
  options.space!.noRoomOn(disk);
  return reportNoRoom(item, options);
}
