import { unlinkSync } from "node:fs";
import { LATENCY_BOUND_BELOW, copyWithHash, type CopyRequest, type CopyResult, type CopySettled } from "../../copy/builtin-copy.ts";
import { crashPoint } from "../../crash-point.ts";
import type { MountedDisk } from "../disk/mounted-disk.ts";
import type { Reservation, SpaceBudget } from "../disk/space-budget.ts";
import { errnoCode, errorMessage } from "../../errors.ts";
import { fsPath } from "../../fs/byte-names.ts";
import { isFileMode, lstatEntry } from "../../fs/entry-stat.ts";
import { bytesOnDisk } from "../../fs/sparse.ts";
import type { HashAlgorithm } from "../../hashing.ts";
import type { ChecksumRequest } from "../../copy/digest-ring.ts";
import { batches, mapBounded } from "../../pipeline/bounded.ts";
import { ByteBudget } from "../../pipeline/byte-budget.ts";
import type { PlannedFile, StoredFile } from "./types.ts";
import type { RunReport } from "../run/report.ts";
import { formatBytes } from "../../size.ts";

/** Files per group handed to one bounded task, and the most bytes a group gathers. */
const GROUP_FILES = 32;
const GROUP_BYTES = 1024 * 1024;

/**
 * Copies one file. It may also copy several small files with one request
 * (`many`; the run's copy workers do): a pipeline script that swaps in its
 * own function gets it called for every file.
 */
export type CopyFunction = ((request: CopyRequest) => Promise<CopyResult>) & { readonly many?: CopyManyFunction };

/** Copies several files with one request (the CopyPool: one message to one worker), settling each. */
export type CopyManyFunction = (requests: readonly CopyRequest[]) => Promise<CopySettled[]>;

export interface CopierOptions {
  readonly algorithm: HashAlgorithm;
  readonly space: SpaceBudget;
  readonly report: RunReport;
  /** A fresh temp path on the disk whose space was reserved for the copy. */
  readonly newTemp: (disk: MountedDisk) => { name: string; path: string };
  /** The built-in copier by default; dc3dd is the alternative. */
  readonly copy?: CopyFunction;
  /**
   * Checksums a copied file's parity set will need (see FileChecksums), asked
   * of the copy so they come from its read: for a file copied alone (small
   * files in groups are hashed again from their temps, in a few microseconds).
   */
  readonly checksumsFor?: (size: number) => ChecksumRequest | undefined;
  /** Files in flight at once (default 1024: small files are latency-bound). */
  readonly concurrency?: number;
  /** Bytes of copies in flight at once (default 512 MiB; a large file counts as half of it at most). */
  readonly bytesInFlight?: number;
  /**
   * A file that found no room may be content the archive holds: this returns
   * it as a link, which needs no space (see Planner.linkWhenNoRoom), else undefined.
   */
  readonly linkIfHeld?: (item: PlannedFile) => PlannedFile | undefined;
  /** A file this stage could not store (no room, unreadable, changing): its old name must not be taken for deleted. */
  readonly onNotStored?: (item: PlannedFile) => void;
  readonly dryRun?: boolean;
  readonly signal?: AbortSignal;
}

/**
 * Copies new and modified files into temp files on the disk, hashing as it
 * copies. Links, symlinks and renames pass through: they carry no data.
 */
export async function* copier(items: AsyncIterable<PlannedFile>, options: CopierOptions): AsyncGenerator<StoredFile> {
  const work = async (item: PlannedFile): Promise<StoredFile | undefined> => {
    if (item.action !== "copy") return { ...item, action: item.action ?? "copy", hash: item.hash ?? "", bytesCopied: 0 };
    if (options.dryRun) {
      options.report.plan.push(`copy ${item.path} (${formatBytes(item.size)})`);
      return { ...item, action: "copy", hash: item.hash ?? "", bytesCopied: item.size };
    }
    return copyOne(item, options);
  };
  // Many small files in flight keep the copy workers busy while the main
  // thread commits a batch; the byte budget keeps large files from piling up.
  const bytesInFlight = options.bytesInFlight ?? 512 * 1024 * 1024;
  const budget = new ByteBudget(bytesInFlight);
  const gated = async (item: PlannedFile): Promise<StoredFile | undefined> => {
    if (item.action !== "copy" || options.dryRun) return work(item);
    // A large file asks for at most half the budget: two of them copy at
    // once (one per core), never more, so a spinning disk sees two streams.
    const granted = await budget.acquire(Math.min(item.size + 4096, bytesInFlight / 2));
    try {
      return await work(item);
    } finally {
      budget.release(granted);
    }
  };
  // Small files travel in groups: one bounded task and one request to the
  // copy workers per group instead of per file, since a queue slot and its
  // promises cost more than a 4 KB copy.
  const copyGroup = async (group: PlannedFile[]): Promise<(StoredFile | undefined)[]> => {
    const stored: (StoredFile | undefined)[] = new Array(group.length);
    const small: number[] = [];
    const others: Promise<void>[] = [];
    group.forEach((item, index) => {
      if (item.action === "copy" && !options.dryRun && options.copy?.many && item.size < LATENCY_BOUND_BELOW) small.push(index);
      else others.push(gated(item).then((result) => void (stored[index] = result)));
    });
    if (small.length > 0) {
      const granted = await budget.acquire(small.reduce((sum, index) => sum + group[index].size + 4096, 0));
      try {
        const copied = await copyAll(small.map((index) => group[index]), options);
        small.forEach((index, i) => (stored[index] = copied[i]));
      } finally {
        budget.release(granted);
      }
    }
    await Promise.all(others);
    return stored;
  };
  const groups = batches(items, { size: GROUP_FILES, weight: (item) => (item.action === "copy" ? item.size : 0), maxWeight: GROUP_BYTES, maxWaitMs: 20 });
  const concurrency = Math.max(1, Math.ceil((options.concurrency ?? 1024) / GROUP_FILES));
  for await (const stored of mapBounded(groups, copyGroup, { concurrency, signal: options.signal })) {
    for (const item of stored) if (item) yield item;
  }
}

/** A copy that has its space and temp file and waits for its bytes. */
interface StartedCopy {
  readonly item: PlannedFile;
  readonly reservation: Reservation;
  readonly temp: { readonly name: string; readonly path: string };
  /** Bytes of it the progress line already counts (a large file says how far it got); -1 once it has settled. */
  counted: number;
}

/** The file changed while it was copied: it is tried once more from its new state. */
const CHANGED = Symbol("changed");
/**
 * The disk ran out of space during the copy (filled from outside, or the
 * estimate fell short): that disk takes no more new data, and the file is
 * tried once more, on the next open disk or reported as not stored.
 */
const NO_ROOM = Symbol("no room");

/** Copies one file, retrying once if it changed during the copy. Reports failures; never throws for a file. */
export async function copyOne(item: PlannedFile, options: CopierOptions): Promise<StoredFile | undefined> {
  const first = await attemptOne(item, options);
  return first === CHANGED ? retryChanged(item, options) : first === NO_ROOM ? retryElsewhere(item, options) : first;
}

/**
 * Copies small files with one `copy.many` request, each as copyOne would: a
 * file that changed during its copy is tried once more on its own.
 */
async function copyAll(items: readonly PlannedFile[], options: CopierOptions): Promise<(StoredFile | undefined)[]> {
  const started = items.map((item) => startCopy(item, options));
  const live = started.filter(isStarted);
  let settled: CopySettled[] = [];
  if (live.length > 0) {
    try {
      settled = await options.copy!.many!(live.map((copy) => copyRequest(copy, options)));
    } catch (error) {
      // The request as a whole failed (a worker died): each file fails with it, as one by one.
      settled = live.map(() => ({ ok: false, error }));
    }
  }
  let next = 0;
  return Promise.all(
    started.map((copy) => {
      if (!isStarted(copy)) return copy;
      const outcome = finishCopy(copy, settled[next++], options);
      return outcome === CHANGED ? retryChanged(copy.item, options) : outcome === NO_ROOM ? retryElsewhere(copy.item, options) : outcome;
    }),
  );
}

async function attemptOne(item: PlannedFile, options: CopierOptions): Promise<StoredFile | undefined | typeof CHANGED | typeof NO_ROOM> {
  const copy = startCopy(item, options);
  if (!isStarted(copy)) return copy;
  let settled: CopySettled;
  // A file copied alone may be large: the progress line moves while it copies (small ones in groups never say).
  const onProgress = (bytesSoFar: number) => {
    if (copy.counted < 0 || bytesSoFar <= copy.counted) return;
    options.report.copying(bytesSoFar - copy.counted);
    copy.counted = bytesSoFar;
  };
  try {
    const checksums = options.checksumsFor?.(item.size);
    settled = { ok: true, result: await (options.copy ?? copyWithHash)({ ...copyRequest(copy, options), onProgress, checksums }) };
  } catch (error) {
    settled = { ok: false, error };
  }
  return finishCopy(copy, settled, options);
}

/** The second and last attempt, from the file's state now. */
async function retryChanged(item: PlannedFile, options: CopierOptions): Promise<StoredFile | undefined> {
  let current: PlannedFile;
  try {
    const stats = lstatEntry(item.path);
    if (!isFileMode(stats.mode)) return reportChangedTwice(item, options);
    current = { ...item, size: stats.size, mtimeMs: stats.mtimeMs, mtimeNsec: stats.mtimeNsec, mode: stats.mode & 0o7777, ino: stats.ino, dev: stats.dev, hash: undefined };
  } catch (error) {
    return reportFailure(item, error, options);
  }
  const second = await attemptOne(current, options);
  if (second === NO_ROOM) return reportNoRoom(current, options);
  return second === CHANGED ? reportChangedTwice(current, options) : second;
}

/** The one more try of a copy its disk had no room for: on the next open disk if there is one. */
async function retryElsewhere(item: PlannedFile, options: CopierOptions): Promise<StoredFile | undefined> {
  const second = await attemptOne(item, options);
  if (second === CHANGED) return retryChanged(item, options);
  return second === NO_ROOM ? reportNoRoom(item, options) : second;
}

/**
 * Reserves space and a temp file for a copy. A file that does not fit on
 * the current disk is stored as a link when its content is already archived
 * (nothing to copy, no disk filled by a rename); else it spans onto the next
 * disk, or is not stored (reported: undefined).
 */
function startCopy(item: PlannedFile, options: CopierOptions): StartedCopy | StoredFile | undefined {
  const { report, space } = options;
  // A sparse file's copy keeps its holes: it needs the bytes it has allocated, not its size.
  const need = bytesOnDisk(item.path, item.size);
  const pathBytes = Buffer.byteLength(item.path);
  let reservation = space.tryReserve(need, { span: false, logicalSize: item.size, pathBytes });
  if (!reservation) {
    const link = options.linkIfHeld?.(item);
    if (link) return { ...link, action: "link", hash: link.hash!, bytesCopied: 0 };
    reservation = space.tryReserve(need, { logicalSize: item.size, pathBytes });
  }
  if (!reservation) {
    if (space.largerThanAnyDisk(need)) {
      options.onNotStored?.(item);
      report.counts.skipped++;
      // Not a full disk: no disk could ever hold it (files are never split).
      report.error(item.path, `${formatBytes(item.size)} is larger than any mounted archive disk can hold; it is not archived`);
    } else reportNoRoom(item, options);
    return undefined;
  }
  return { item, reservation, temp: options.newTemp(reservation.disk), counted: 0 };
}

function isStarted(copy: StartedCopy | StoredFile | undefined): copy is StartedCopy {
  return copy !== undefined && "reservation" in copy;
}

/** A file no mounted disk has room for now: not stored, and the run ends incomplete (exit 3). */
export function reportNoRoom(item: PlannedFile, options: { readonly report: RunReport; readonly onNotStored?: (item: PlannedFile) => void }): undefined {
  const { report } = options;
  options.onNotStored?.(item);
  report.counts.skipped++;
  report.notStored.files++;
  report.notStored.bytes += item.size;
  report.warn(item.path, `not stored: ${formatBytes(item.size)} does not fit on the disk`);
  return undefined;
}

function copyRequest(copy: StartedCopy, options: CopierOptions): CopyRequest {
  const { item, temp } = copy;
  return { source: item.path, target: temp.path, algorithm: options.algorithm, mode: item.mode, mtimeMs: item.mtimeMs, mtimeNsec: item.mtimeNsec, expectedSize: item.size, signal: options.signal };
}

/** What became of a copy: stored, CHANGED or NO_ROOM (its temp removed), or undefined (reported). Releases its space. */
function finishCopy(copy: StartedCopy, settled: CopySettled, options: CopierOptions): StoredFile | undefined | typeof CHANGED | typeof NO_ROOM {
  const { item, temp, reservation } = copy;
  // Counted once: the bytes the progress line has of this copy are taken back, and done() adds them all.
  options.report.copying(-copy.counted);
  copy.counted = -1;
  let written = false;
  try {
    if (!settled.ok && errnoCode(settled.error) === "ENOSPC") {
      unlinkQuiet(temp.path);
      options.space.noRoomOn(reservation.disk);
      return NO_ROOM;
    }
    if (!settled.ok) throw settled.error;
    const { result } = settled;
    written = true;
    const after = result.sourceAfter;
    if (result.size === item.size && after.size === item.size && after.mtimeMs === item.mtimeMs) {
      crashPoint("after-copy");
      options.report.done(result.size);
      return { ...item, action: "copy", hash: result.hash, tempName: temp.name, disk: reservation.disk, bytesCopied: result.size, checksums: result.checksums };
    }
    unlinkQuiet(temp.path);
    written = false;
    return CHANGED;
  } catch (error) {
    unlinkQuiet(temp.path);
    return reportFailure(item, error, options);
  } finally {
    options.space.release(reservation, written, temp.name);
  }
}

function reportFailure(item: PlannedFile, error: unknown, options: CopierOptions): undefined {
  options.signal?.throwIfAborted();
  const { report } = options;
  report.counts.skipped++;
  const code = errnoCode(error);
  // A file that vanished was not moved here; any other failure leaves its content unstored.
  if (code !== "ENOENT") options.onNotStored?.(item);
  if (code === "ENOENT") report.error(item.path, "vanished before it could be copied");
  else report.error(item.path, errorMessage(error));
  return undefined;
}

function reportChangedTwice(item: PlannedFile, options: CopierOptions): undefined {
  options.onNotStored?.(item);
  options.report.counts.skipped++;
  options.report.error(item.path, "changed while being copied (twice); it will be archived by a later run");
  return undefined;
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone.
  }
}
