/**
 * The hand-off between a copy and the threads that digest its bytes: the
 * copy reads each chunk into a slot of a ring of shared memory, writes it,
 * and publishes it; each digest thread reads the slot from the same memory
 * and releases it. So a file is read once, whatever digests it gets, and
 * each serial digest (an MD5 runs at ~0.7 GB/s) has a thread of its own.
 * Synchronisation is by Atomics on a small control array; only the copy
 * thread and the digest threads ever wait (never an event loop's thread).
 */

/** What a copy can also compute (see FileChecksums). */
export interface ChecksumRequest {
  /** Bytes per block of the per-block checksums (the last block counts as zero-padded to it). */
  readonly blockSize: number;
}

/**
 * Checksums of a file computed as it was copied, beside its content hash:
 * the MD5 of the whole, of its first 16 KiB, and the MD5 and CRC32 of each
 * block (a PAR2 set's file description and slice checksums).
 */
export interface FileChecksums {
  readonly blockSize: number;
  readonly md5: Uint8Array;
  readonly md5First16k: Uint8Array;
  /** Each block's MD5, end to end (16 bytes a block). */
  readonly blockMd5s: Uint8Array;
  readonly blockCrcs: Uint32Array;
}

/** The digest threads of one copy: the whole file's MD5 and the blocks' MD5 and CRC32. */
export const CONSUMERS = 2;
export const SLOT_BYTES = 1 << 20;
/** Slots in the ring: slack for the thread that is behind (two cores, three threads). */
export const SLOTS = 16;

// The control array's words.
/** Bumped by the copy on every publish, end and abort: the digest threads wait on it. */
const PRODUCER_EPOCH = 0;
/** Chunks published so far. */
const PUBLISHED = 1;
/** Chunks in the file once it is read whole; -1 before. */
const END = 2;
/** 1 once the copy gave up (the digests are not wanted). */
const ABORTED = 3;
/** Bumped by a digest thread on every release and when it finishes: the copy waits on it. */
const CONSUMER_EPOCH = 4;
/** Chunks consumer c has released: CONSUMED + c. */
const CONSUMED = 5;
/** Consumer c's state: FINISHED + c; 0 working, 1 done (results written), 2 failed. */
const FINISHED = CONSUMED + CONSUMERS;
/** Bytes in each slot: LENGTHS + slot. */
const LENGTHS = FINISHED + CONSUMERS;
const CONTROL_WORDS = LENGTHS + SLOTS;

const FINISHED_OK = 1;
const FINISHED_FAILED = 2;

/**
 * A digest thread that has not moved for this long is given up: the copy
 * goes on without its checksums (whoever needs them reads the file again).
 * A thread starved that long, or dead, must not fail the copy.
 */
const STALL_MS = 60_000;
const WAIT_MS = 1000;

/** The shared memory of one ring, as it crosses to the digest threads. */
export interface RingMemory {
  readonly control: SharedArrayBuffer;
  readonly data: SharedArrayBuffer;
}

/** A ring's data memory, allocated once per copy thread; a fresh control array per copy. */
export function ringMemory(data: SharedArrayBuffer): RingMemory {
  const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
  new Int32Array(control)[END] = -1;
  return { control, data };
}

export function ringData(): SharedArrayBuffer {
  return new SharedArrayBuffer(SLOTS * SLOT_BYTES);
}

/**
 * The copy's side: slots to read into, published in order; waits for the
 * slowest digest thread. A digest thread only ever reads the ring and
 * writes its own results, and stops at the next chunk once the copy gives
 * up: so a copy that gives up never waits for it, and the next copy may
 * reuse the ring at once (a straggler's results are never read).
 */
export class RingProducer {
  readonly #control: Int32Array;
  readonly #data: SharedArrayBuffer;
  #next = 0;

  constructor(memory: RingMemory) {
    this.#control = new Int32Array(memory.control);
    this.#data = memory.data;
  }

  /** The slot for the next chunk, once every digest thread is done with what it held before; undefined when one stalled (given up). */
  slot(): Uint8Array | undefined {
    const reuse = this.#next - SLOTS;
    if (!this.#waitConsumers((c) => Atomics.load(this.#control, CONSUMED + c) > reuse)) return undefined;
    return new Uint8Array(this.#data, (this.#next % SLOTS) * SLOT_BYTES, SLOT_BYTES);
  }

  /** The slot given by slot() holds `length` bytes of the file, next in order. */
  publish(length: number): void {
    this.#control[LENGTHS + (this.#next % SLOTS)] = length;
    Atomics.store(this.#control, PUBLISHED, ++this.#next);
    this.#signal();
  }

  /** Every chunk is published: true once each digest thread has written its results, false when one failed or stalled. */
  finish(): boolean {
    Atomics.store(this.#control, END, this.#next);
    this.#signal();
    if (!this.#waitConsumers((c) => Atomics.load(this.#control, FINISHED + c) !== 0)) return false;
    for (let c = 0; c < CONSUMERS; c++) if (this.#control[FINISHED + c] !== FINISHED_OK) return false;
    return true;
  }

  /** The digests are not wanted (the copy failed, or a digest thread stalled): the digest threads stop. */
  abort(): void {
    Atomics.store(this.#control, ABORTED, 1);
    this.#signal();
  }

  #signal(): void {
    Atomics.add(this.#control, PRODUCER_EPOCH, 1);
    Atomics.notify(this.#control, PRODUCER_EPOCH);
  }

  /** Waits until `ready` holds for every digest thread still working; false (the digests given up) after STALL_MS without news from them. */
  #waitConsumers(ready: (consumer: number) => boolean): boolean {
    let waited = 0;
    for (;;) {
      const epoch = Atomics.load(this.#control, CONSUMER_EPOCH);
      let all = true;
      for (let c = 0; c < CONSUMERS; c++) {
        // A failed digest thread holds nothing: the copy goes on and learns of it at the end.
        if (Atomics.load(this.#control, FINISHED + c) === FINISHED_FAILED) continue;
        if (!ready(c)) all = false;
      }
      if (all) return true;
      if (Atomics.wait(this.#control, CONSUMER_EPOCH, epoch, WAIT_MS) !== "timed-out") waited = 0;
      else if ((waited += WAIT_MS) >= STALL_MS) {
        this.abort();
        return false;
      }
    }
  }
}

/** A digest thread's side: the chunks in order, each released once digested. */
export class RingConsumer {
  readonly #control: Int32Array;
  readonly #data: SharedArrayBuffer;
  readonly #index: number;
  #next = 0;

  constructor(memory: RingMemory, index: number) {
    this.#control = new Int32Array(memory.control);
    this.#data = memory.data;
    this.#index = index;
  }

  /** The next chunk, or undefined at the end of the file or when the copy gave up (see aborted). */
  next(): Uint8Array | undefined {
    for (;;) {
      const epoch = Atomics.load(this.#control, PRODUCER_EPOCH);
      if (Atomics.load(this.#control, ABORTED) !== 0) return undefined;
      if (Atomics.load(this.#control, PUBLISHED) > this.#next) {
        const slot = this.#next % SLOTS;
        return new Uint8Array(this.#data, slot * SLOT_BYTES, this.#control[LENGTHS + slot]);
      }
      const end = Atomics.load(this.#control, END);
      if (end >= 0 && this.#next >= end) return undefined;
      Atomics.wait(this.#control, PRODUCER_EPOCH, epoch);
    }
  }

  /** The chunk next() gave is digested: its slot may be read into again. */
  release(): void {
    Atomics.store(this.#control, CONSUMED + this.#index, ++this.#next);
    this.#signal();
  }

  get aborted(): boolean {
    return Atomics.load(this.#control, ABORTED) !== 0;
  }

  /** Results written (or not: `failed`); the copy stops waiting for this thread. */
  finish(failed: boolean): void {
    Atomics.store(this.#control, FINISHED + this.#index, failed ? FINISHED_FAILED : FINISHED_OK);
    this.#signal();
  }

  #signal(): void {
    Atomics.add(this.#control, CONSUMER_EPOCH, 1);
    Atomics.notify(this.#control, CONSUMER_EPOCH);
  }
}
