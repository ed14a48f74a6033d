import { statSync } from "node:fs";
import type { MountedDisk } from "./mounted-disk.ts";
import { paritySetFileSizes } from "./parity-store.ts";

export interface SpaceBudgetOptions {
  /** Bytes always left free on the file system. */
  readonly reserve: number;
  /** Most bytes of data this disk may hold (null: the file system's size). */
  readonly capacity: number | null;
  /** Bytes of data already on the disk when the run started. */
  readonly usedAtStart: number;
  /** Recovery data (PAR2) written next to each file, in percent of its size; 0 or undefined: none. */
  readonly parityPercent?: number;
  /**
   * Room the run's catalog writes need whatever it stores (see
   * catalogRoomAtStart): kept free from the start, so a disk filled by
   * copies still takes the commits that record them.
   */
  readonly catalogRoom?: number;
  /**
   * Bytes of that room (with the catalog growth of the files reserved) held
   * already in a file of their own, out of statfs's free space (see
   * DiskWriter.keepRoomForCommits): not counted twice.
   */
  readonly catalogRoomHeld?: number;
  /** A full disk used only for changes without data (renames, links, deletions): no new data goes onto it. */
  readonly closed?: boolean;
}

/**
 * What the catalogs grow by for one file of a path of `pathBytes`: its disk
 * catalog row with its two index entries (about 2 × path + 130 bytes, a
 * fifth more for the b-tree's slack), as much again for the rollback
 * journal that may hold those pages at a commit, its row in the copy of the
 * host catalog left on the disk (2 × path + 200) and its directory entry.
 * Measured on 8 000 files of 27-byte paths: 226 + 250 bytes, and journals
 * of 100 bytes a file; this says 860.
 */
export function catalogBytesPerFile(pathBytes: number): number {
  return 6 * pathBytes + 700;
}

/**
 * Room a run's catalog writes need before any file: the copy of the host
 * catalog written next to the old one at the end (temp, then rename) and a
 * rollback journal as large as the disk catalog, the most one commit can
 * touch. Both grow with every file; catalogBytesPerFile counts that.
 */
export function catalogRoomAtStart(disk: MountedDisk, hostCatalogBytes: number, blockSize: number): number {
  const diskCatalogBytes = fileBytes(disk.layout.catalog);
  return roundUpTo(hostCatalogBytes, blockSize) + roundUpTo(diskCatalogBytes, blockSize) + 4 * blockSize;
}

function fileBytes(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

const roundUpTo = (bytes: number, block: number) => Math.ceil(bytes / block) * block;

/** The parts of one copy's room on the file system. */
interface CopyRoom {
  /** The data, in whole blocks: shows in statfs once the copy is written. */
  readonly data: number;
  /** The parity set's files in whole blocks: shows once the parity stage made them. */
  readonly parity: number;
  /** Catalog rows, journal, the host catalog copy's row: shows at commits and at the end of the run, so counted to the end. */
  readonly catalog: number;
}

/** One disk's room: free space less reserve and in-flight copies, and its capacity. */
class DiskRoom {
  readonly disk: MountedDisk;
  readonly #options: SpaceBudgetOptions;
  /** File-system bytes of copies in flight and of parity not made yet, and the data bytes in flight (for the capacity). */
  #inFlight = 0;
  #inFlightData = 0;
  /** Catalog growth of every copy this run started (see catalogBytesPerFile). */
  #catalogGrowth = 0;
  #addedThisRun = 0;
  #freeAtCheck = 0;
  #checkedAt = Number.NEGATIVE_INFINITY;
  #reservedSinceCheck = 0;
  #totalSize: number | undefined;
  #blockSize: number | undefined;
  /** A write failed for lack of space (the disk filled from outside, or the estimate fell short): no new copy starts here. */
  #exhausted = false;

  constructor(disk: MountedDisk, options: SpaceBudgetOptions) {
    this.disk = disk;
    this.#options = options;
  }

  get closed(): boolean {
    return Boolean(this.#options.closed) || this.#exhausted;
  }

  /** Whether this run has put new data here (written or in flight): a disk it then finds full, it filled. */
  get storedThisRun(): boolean {
    return this.#addedThisRun + this.#inFlightData > 0;
  }

  /** No more new data on this disk for the rest of the run. */
  exhaust(): void {
    this.#exhausted = true;
  }

  /**
   * Bytes a new copy may use. statfs is asked at most every 100 ms (it was
   * a tenth of a small-file run), and again whenever the cached answer says
   * no, so near a full disk the answer is always fresh. Conservative: copies
   * in flight count in full even when partly written, and catalog growth
   * for the whole run even once committed.
   */
  #room(fresh: boolean): number {
    const now = performance.now();
    if (fresh || now - this.#checkedAt > 100) {
      const space = this.disk.fileSystemSpace();
      this.#blockSize = space.blockSize;
      this.#freeAtCheck = space.free - this.#inFlight;
      this.#checkedAt = now;
      this.#reservedSinceCheck = 0;
    }
    return this.#freeAtCheck - this.#reservedSinceCheck - this.#options.reserve - this.#catalogNeed();
  }

  /** Catalog room still to be taken from the free space: at start and per file, less what the held file keeps. */
  #catalogNeed(): number {
    return Math.max(0, (this.#options.catalogRoom ?? 0) + this.#catalogGrowth - (this.#options.catalogRoomHeld ?? 0));
  }

  /**
   * What a file of `bytes` takes on the file system: whole blocks of the
   * file system's size, plus its recovery set (two files of whole blocks)
   * when parity is on, plus what the catalogs grow by for it.
   */
  #onDisk(bytes: number, logicalSize: number, pathBytes: number): CopyRoom {
    const block = (this.#blockSize ??= this.disk.fileSystemSpace().blockSize);
    // A sparse file (fewer bytes than its size) has slices sized by its whole length (see parity-store.ts).
    const parityFiles = paritySetFileSizes(logicalSize, this.#options.parityPercent ?? 0, pathBytes, bytes);
    return {
      data: roundUpTo(bytes, block),
      parity: parityFiles.reduce((sum, size) => sum + roundUpTo(size, block), 0),
      catalog: catalogBytesPerFile(pathBytes),
    };
  }

  tryReserve(bytes: number, logicalSize: number, pathBytes: number): CopyRoom | undefined {
    if (this.closed) return undefined;
    const room = this.#onDisk(bytes, logicalSize, pathBytes);
    const need = room.data + room.parity + room.catalog;
    if (this.#room(false) < need && this.#room(true) < need) return undefined;
    const capacity = this.#options.capacity;
    if (capacity !== null && this.#options.usedAtStart + this.#addedThisRun + this.#inFlightData + bytes > capacity) return undefined;
    this.#inFlight += room.data + room.parity;
    this.#inFlightData += bytes;
    this.#catalogGrowth += room.catalog;
    this.#reservedSinceCheck += need;
    return room;
  }

  /** The copy is written (its data now shows in statfs; its parity is still to come) or abandoned (nothing of it stays). */
  release(bytes: number, room: CopyRoom, written: boolean): void {
    this.#inFlightData -= bytes;
    if (written) {
      this.#inFlight -= room.data;
      this.#addedThisRun += bytes;
    } else {
      this.#inFlight -= room.data + room.parity;
      this.#catalogGrowth -= room.catalog;
    }
  }

  /** The copy's parity set is made (it shows in statfs now) or will not be. */
  releaseParity(room: CopyRoom): void {
    this.#inFlight -= room.parity;
  }

  /** The most one file could ever take on this disk (empty, less the reserve, within capacity). */
  wholeDisk(): number {
    // A full disk says nothing about how large a file a disk can hold.
    if (this.closed) return Number.POSITIVE_INFINITY;
    const parity = this.#options.parityPercent ?? 0;
    // A file system's size does not change during a run: asked once (statfs per file was a tenth of a small-file run).
    this.#totalSize ??= this.disk.fileSystemSpace().total;
    const total = (this.#totalSize - this.#options.reserve - (this.#options.catalogRoom ?? 0)) / (1 + parity / 100);
    return this.#options.capacity === null ? total : Math.min(total, this.#options.capacity);
  }

  available(): number {
    if (this.closed) return 0;
    const { free } = this.disk.fileSystemSpace();
    let room = free - this.#options.reserve - this.#inFlight - this.#catalogNeed();
    const capacity = this.#options.capacity;
    if (capacity !== null) room = Math.min(room, capacity - this.#options.usedAtStart - this.#addedThisRun - this.#inFlightData);
    return Math.max(0, room);
  }
}

/** Bytes reserved for one copy on one disk (SpaceBudget.tryReserve). */
export class Reservation {
  /** @internal */
  readonly room: DiskRoom;
  /** @internal */
  readonly parts: CopyRoom;
  readonly bytes: number;
  #released = false;
  #parityReleased = false;

  constructor(room: DiskRoom, bytes: number, parts: CopyRoom) {
    this.room = room;
    this.bytes = bytes;
    this.parts = parts;
  }

  /** @internal Releases the copy's share once. */
  release(written: boolean): void {
    if (this.#released) return;
    this.#released = true;
    this.room.release(this.bytes, this.parts, written);
    if (!written) this.#parityReleased = true;
  }

  /** @internal Releases the parity share once (after the copy's). */
  releaseParity(): void {
    if (this.#parityReleased) return;
    this.#parityReleased = true;
    this.room.releaseParity(this.parts);
  }

  /** The disk the copy's temp file goes on. */
  get disk(): MountedDisk {
    return this.room.disk;
  }
}

export interface SpanningHooks {
  /** `full` took no more: new data goes to `next` from now on, if there is one (the run marks `full` full). */
  readonly onFull?: (full: MountedDisk, next: MountedDisk | undefined) => void;
  /**
   * A write on `disk` failed for lack of space although its room was
   * reserved: something else filled it. It takes no more new data in this
   * run (it is not marked full: that space may come back); new data goes to `next`, if any.
   */
  readonly onOutOfSpace?: (disk: MountedDisk, next: MountedDisk | undefined) => void;
}

/**
 * Decides where a file goes before it is started: onto the current open
 * disk if it fits (free space less the reserve and less what copies in
 * flight will still write, and under the disk's capacity); when it does not,
 * the disk is done and new data spans onto the next mounted open disk. A
 * file is never split, and one that fits on no disk is never started.
 */
export class SpaceBudget {
  readonly #rooms: DiskRoom[];
  readonly #hooks: SpanningHooks;
  /** Written copies whose parity room is held until the parity stage is done with them, by temp name. */
  readonly #awaitingParity = new Map<string, Reservation>();
  #current = 0;

  constructor(targets: readonly { disk: MountedDisk; options: SpaceBudgetOptions }[], hooks: SpanningHooks = {}) {
    if (targets.length === 0) throw new Error("SpaceBudget needs at least one disk");
    this.#rooms = targets.map((target) => new DiskRoom(target.disk, target.options));
    this.#hooks = hooks;
  }

  /** The disk new data goes to now. */
  get current(): MountedDisk {
    return this.#rooms[this.#current].disk;
  }

  /**
   * Reserves `bytes` for a copy of a file of `logicalSize` (larger when
   * sparse: its parity slices are sized by it) whose path has `pathBytes`
   * (its catalog rows grow with it), moving on to the next disk when the current
   * one cannot take it (unless `span` is false); undefined when none can. The
   * copy's temp goes on the reservation's disk, and the reservation is
   * handed back to release().
   */
  tryReserve(bytes: number, options: { readonly span?: boolean; readonly logicalSize?: number; readonly pathBytes?: number } = {}): Reservation | undefined {
    if (this.largerThanAnyDisk(bytes)) return undefined;
    for (;;) {
      const room = this.#rooms[this.#current];
      const wasOpen = !room.closed;
      const parts = room.tryReserve(bytes, options.logicalSize ?? bytes, options.pathBytes ?? 0);
      if (parts) return new Reservation(room, bytes, parts);
      if (options.span === false) return undefined;
      if (this.#current + 1 >= this.#rooms.length) {
        // The last open disk that this run filled is full too, up to its capacity or its file system: marked so, as
        // when spanning. One found without room before the run stored anything was filled by something else: not marked.
        if (wasOpen && room.storedThisRun) {
          room.exhaust();
          this.#hooks.onFull?.(room.disk, undefined);
        }
        return undefined;
      }
      this.#current++;
      this.#hooks.onFull?.(room.disk, this.#rooms[this.#current].disk);
    }
  }

  /**
   * The copy finished (its bytes now show in statfs) or was abandoned. The
   * room of a written copy's parity stays reserved until releaseParity.
   */
  release(reservation: Reservation, written: boolean, tempName?: string): void {
    reservation.release(written);
    if (!written) return;
    if (tempName !== undefined && reservation.parts.parity > 0) this.#awaitingParity.set(tempName, reservation);
    else reservation.releaseParity();
  }

  /** The parity stage made the set of the copy in `tempName` (or will make none): its room is in statfs now. */
  releaseParity(tempName: string): void {
    const reservation = this.#awaitingParity.get(tempName);
    if (!reservation) return;
    this.#awaitingParity.delete(tempName);
    reservation.releaseParity();
  }

  /**
   * A write on `disk` failed for lack of space (filled from outside, or the
   * estimate fell short): nothing new starts there any more; new data spans
   * onto the next open disk, which becomes current.
   */
  noRoomOn(disk: MountedDisk): void {
    const index = this.#rooms.findIndex((room) => room.disk === disk);
    if (index < 0 || this.#rooms[index].closed) return;
    this.#rooms[index].exhaust();
    if (index === this.#current && this.#current + 1 < this.#rooms.length) this.#current++;
    this.#hooks.onOutOfSpace?.(disk, index < this.#current ? this.#rooms[this.#current].disk : undefined);
  }

  /** No mounted open disk could hold this file even empty: an error for that file, not a full disk. */
  largerThanAnyDisk(bytes: number): boolean {
    return this.#rooms.every((room) => room.wholeDisk() < bytes);
  }

  /** Bytes that can still be stored now (on the current disk and those after it). */
  available(): number {
    return this.#rooms.slice(this.#current).reduce((sum, room) => sum + room.available(), 0);
  }
}
