import type { MountedDisk } from "./mounted-disk.ts";

export interface SpaceBudgetOptions {
  /** Bytes always left free on the file system. */
  readonly reserve: number;
  /** Most bytes of data this disk may hold (null: the file system's size). */
  readonly capacity: number | null;
  /** Bytes of data already on the disk when the run started. */
  readonly usedAtStart: number;
}

/**
 * Decides whether a file fits before it is started: free space less the
 * reserve and less what copies in flight will still write, and under the
 * disk's capacity. A file that does not fit is never started.
 */
export class SpaceBudget {
  readonly #disk: MountedDisk;
  readonly #options: SpaceBudgetOptions;
  #inFlight = 0;
  #addedThisRun = 0;

  constructor(disk: MountedDisk, options: SpaceBudgetOptions) {
    this.#disk = disk;
    this.#options = options;
  }

  #freeAtCheck = 0;
  #checkedAt = Number.NEGATIVE_INFINITY;
  #reservedSinceCheck = 0;

  /**
   * Bytes a new copy may use. statfs is asked at most every 100 ms (it was
   * a tenth of a small-file run), and again whenever the cached answer says
   * no, so near a full disk the answer is always fresh. Conservative: copies
   * in flight count in full even when partly written.
   */
  #room(fresh: boolean): number {
    const now = performance.now();
    if (fresh || now - this.#checkedAt > 100) {
      this.#freeAtCheck = this.#disk.fileSystemSpace().free - this.#inFlight;
      this.#checkedAt = now;
      this.#reservedSinceCheck = 0;
    }
    return this.#freeAtCheck - this.#reservedSinceCheck - this.#options.reserve;
  }

  /** Reserves `bytes` for a copy; false when they do not fit. */
  tryReserve(bytes: number): boolean {
    if (this.#room(false) < bytes && this.#room(true) < bytes) return false;
    const capacity = this.#options.capacity;
    if (capacity !== null && this.#options.usedAtStart + this.#addedThisRun + this.#inFlight + bytes > capacity) return false;
    this.#inFlight += bytes;
    this.#reservedSinceCheck += bytes;
    return true;
  }

  /** The copy finished (its bytes now show in statfs) or was abandoned. */
  release(bytes: number, written: boolean): void {
    this.#inFlight -= bytes;
    if (written) this.#addedThisRun += bytes;
  }

  /** Bytes that can still be stored now. */
  available(): number {
    const { free } = this.#disk.fileSystemSpace();
    let room = free - this.#options.reserve - this.#inFlight;
    const capacity = this.#options.capacity;
    if (capacity !== null) room = Math.min(room, capacity - this.#options.usedAtStart - this.#addedThisRun - this.#inFlight);
    return Math.max(0, room);
  }
}
