import type { MountedDisk } from "./mounted-disk.ts";
import { chooseSliceSize, MIN_AUTO_SLICE_SIZE } from "../par2/sizing.ts";
import { PARITY_BLOCK_COUNT } from "./parity-store.ts";

export interface SpaceBudgetOptions {
  /** Bytes always left free on the file system. */
  readonly reserve: number;
  /** Most bytes of data this disk may hold (null: the file system's size). */
  readonly capacity: number | null;
  /** Bytes of data already on the disk when the run started. */
  readonly usedAtStart: number;
  /** Recovery data (PAR2) written next to each file, in percent of its size; 0 or undefined: none. */
  readonly parityPercent?: number;
  /** A full disk used only for changes without data (renames, links, deletions): no new data goes onto it. */
  readonly closed?: boolean;
}

const BLOCK = 4096;
const roundUp = (bytes: number) => Math.ceil(bytes / BLOCK) * BLOCK;

/** One disk's room: free space less reserve and in-flight copies, and its capacity. */
class DiskRoom {
  readonly disk: MountedDisk;
  readonly #options: SpaceBudgetOptions;
  /** File-system bytes of copies in flight (see onDisk), and their data bytes (for the capacity). */
  #inFlight = 0;
  #inFlightData = 0;
  #addedThisRun = 0;
  #freeAtCheck = 0;
  #checkedAt = Number.NEGATIVE_INFINITY;
  #reservedSinceCheck = 0;
  #totalSize: number | undefined;

  constructor(disk: MountedDisk, options: SpaceBudgetOptions) {
    this.disk = disk;
    this.#options = options;
  }

  /**
   * Bytes a new copy may use. statfs is asked at most every 100 ms (it was
   * a tenth of a small-file run), and again whenever the cached answer says
   * no, so near a full disk the answer is always fresh. Conservative: copies
   * in flight count in full even when partly written.
   */
  #room(fresh: boolean): number {
    const now = performance.now();
    if (fresh || now - this.#checkedAt > 100) {
      this.#freeAtCheck = this.disk.fileSystemSpace().free - this.#inFlight;
      this.#checkedAt = now;
      this.#reservedSinceCheck = 0;
    }
    return this.#freeAtCheck - this.#reservedSinceCheck - this.#options.reserve;
  }

  /**
   * What a file of `bytes` takes on the file system: whole blocks, plus its
   * recovery data (two small PAR2 files) when parity is on. Capacity counts
   * the data alone; free space must hold all of it.
   */
  onDisk(bytes: number, logicalSize = bytes): number {
    const parity = this.#options.parityPercent ?? 0;
    if (parity <= 0) return roundUp(bytes);
    // A sparse file (fewer bytes than its size) still gets at least one
    // recovery slice, and slices are sized by its whole length (see parity-store.ts).
    const oneSlice = logicalSize > bytes ? chooseSliceSize([logicalSize], { blockCount: PARITY_BLOCK_COUNT, minSliceSize: MIN_AUTO_SLICE_SIZE }) : 0;
    return roundUp(bytes) + Math.max(roundUp((bytes * parity) / 100), roundUp(oneSlice)) + 2 * BLOCK;
  }

  /** Reserves `need` file-system bytes (onDisk) for `bytes` of data. */
  tryReserve(bytes: number, need: number): boolean {
    if (this.#options.closed) return false;
    if (this.#room(false) < need && this.#room(true) < need) return false;
    const capacity = this.#options.capacity;
    if (capacity !== null && this.#options.usedAtStart + this.#addedThisRun + this.#inFlightData + bytes > capacity) return false;
    this.#inFlight += need;
    this.#inFlightData += bytes;
    this.#reservedSinceCheck += need;
    return true;
  }

  release(bytes: number, need: number, written: boolean): void {
    this.#inFlight -= need;
    this.#inFlightData -= bytes;
    if (written) this.#addedThisRun += bytes;
  }

  /** The most one file could ever take on this disk (empty, less the reserve, within capacity). */
  wholeDisk(): number {
    // A full disk says nothing about how large a file a disk can hold.
    if (this.#options.closed) return Number.POSITIVE_INFINITY;
    const parity = this.#options.parityPercent ?? 0;
    // A file system's size does not change during a run: asked once (statfs per file was a tenth of a small-file run).
    this.#totalSize ??= this.disk.fileSystemSpace().total;
    const total = (this.#totalSize - this.#options.reserve) / (1 + parity / 100);
    return this.#options.capacity === null ? total : Math.min(total, this.#options.capacity);
  }

  available(): number {
    if (this.#options.closed) return 0;
    const { free } = this.disk.fileSystemSpace();
    let room = free - this.#options.reserve - this.#inFlight;
    const capacity = this.#options.capacity;
    if (capacity !== null) room = Math.min(room, capacity - this.#options.usedAtStart - this.#addedThisRun - this.#inFlightData);
    return Math.max(0, room);
  }
}

/** Bytes reserved for one copy on one disk (SpaceBudget.tryReserve). */
export class Reservation {
  /** @internal */
  readonly room: DiskRoom;
  readonly bytes: number;
  /** What the copy and its parity take on the file system. */
  readonly need: number;

  constructor(room: DiskRoom, bytes: number, need: number) {
    this.room = room;
    this.bytes = bytes;
    this.need = need;
  }

  /** The disk the copy's temp file goes on. */
  get disk(): MountedDisk {
    return this.room.disk;
  }
}

export interface SpanningHooks {
  /** `full` took no more: new data goes to `next` from now on (the run marks `full` full). */
  readonly onFull?: (full: MountedDisk, next: MountedDisk) => void;
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
   * Reserves `bytes` for a copy, moving on to the next disk when the current
   * one cannot take it (unless `span` is false); undefined when none can. The
   * copy's temp goes on the reservation's disk, and the reservation is
   * handed back to release().
   */
  tryReserve(bytes: number, options: { readonly span?: boolean; readonly logicalSize?: number } = {}): Reservation | undefined {
    if (this.largerThanAnyDisk(bytes)) return undefined;
    for (;;) {
      const room = this.#rooms[this.#current];
      const need = room.onDisk(bytes, options.logicalSize);
      if (room.tryReserve(bytes, need)) return new Reservation(room, bytes, need);
      if (options.span === false || this.#current + 1 >= this.#rooms.length) return undefined;
      this.#current++;
      this.#hooks.onFull?.(room.disk, this.#rooms[this.#current].disk);
    }
  }

  /** The copy finished (its bytes now show in statfs) or was abandoned. */
  release(reservation: Reservation, written: boolean): void {
    reservation.room.release(reservation.bytes, reservation.need, written);
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
