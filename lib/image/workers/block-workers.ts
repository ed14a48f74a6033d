import { availableParallelism } from "node:os";
import { adviseHugePages } from "../../fs/huge-pages.ts";
import { CHUNK_HEADER_BYTES, type Compression } from "../store/chunk-format.ts";
import type { BlockJobs } from "./block-jobs.ts";
import type { BlockJob, BlockReply, EncodeJob, HashJob, RestoreJob, ToBlockWorker } from "./block-messages.ts";

/** Where a slot's block starts: a page in, the page's last bytes the header of the block stored raw. */
const BLOCK_AT = 4096;

/** Memory for a backup's slots: 12 blocks of 4 MiB with their objects, or as many more smaller ones (see slotsWithin). */
export const BACKUP_SLOT_BYTES = 96 * 1024 * 1024;

/** The pool a restore runs on: 8 blocks in memory whatever the image (6 in flight, and room to hand them on). */
export const RESTORE_POOL: BlockWorkersOptions = { slots: 8 };

/** A job as the pool is asked it (the pool numbers it). */
type Job = Omit<HashJob, "id"> | Omit<EncodeJob, "id"> | Omit<RestoreJob, "id">;

/** A thread of the pool: its jobs not answered yet, and its end. */
interface Thread {
  readonly worker: Worker;
  busy: number;
  readonly ended: Promise<void>;
}

export interface BlockWorkersOptions {
  /** Block slots: the most blocks held at once, whatever the image's size. @default 12 */
  readonly slots?: number;
  /**
   * Threads hashing, compressing and decompressing; 0: none, the jobs run on
   * the pool's own thread (see #run). @default the cores, at most 4
   */
  readonly threads?: number;
}

/**
 * A fixed set of block slots in one SharedArrayBuffer, and the threads that
 * hash, compress and decompress blocks in them. Each slot holds a block and
 * its chunk object (up to a header and a whole block); the block starts a
 * page in, so a block stored raw gets its header just before it and is
 * written out without a copy. A stage takes a slot for a block, hands it from
 * stage to stage, and the last stage to need it gives it back; a stage that
 * wants a slot while all are taken waits. So a backup or restore holds at
 * most `slots` blocks and their objects, by construction: no buffer is
 * allocated per block, and the peak does not depend on when the garbage
 * collector runs.
 *
 * Deadlock-free as long as `slots` exceeds the largest batch a stage
 * gathers before passing blocks on (dedupBlocks: claimBatch, a quarter).
 */
export class BlockWorkers {
  readonly blockSize: number;
  readonly slotCount: number;
  readonly #memory: SharedArrayBuffer;
  readonly #slotBytes: number;
  readonly #free: number[] = [];
  readonly #waiting: (() => void)[] = [];
  /** Each thread, the jobs it has not answered, and its end (its `close` event: after the jobs it was given and the stop). */
  readonly #threads: Thread[] = [];
  readonly #pending = new Map<number, { resolve: (reply: BlockReply) => void; reject: (error: Error) => void; thread: Thread }>();
  /** The jobs run on this thread while the pool has no thread of its own (made on the first). */
  #here: BlockJobs | undefined;
  #nextId = 1;
  #closed = false;

  /**
   * Slots for blocks of `blockSize` within `bytes` of memory (a slot holds a
   * block and its object): 12 at least, at most 128. A backup of small
   * blocks gets more, to read ahead and claim more blocks at once.
   */
  static slotsWithin(bytes: number, blockSize: number): number {
    return Math.max(12, Math.min(128, Math.floor(bytes / (BLOCK_AT + 2 * blockSize + CHUNK_HEADER_BYTES))));
  }

  constructor(blockSize: number, options: BlockWorkersOptions = {}) {
    this.blockSize = blockSize;
    this.slotCount = Math.max(5, options.slots ?? 12);
    // Slots start on page boundaries: a page for a raw object's header, then the block, then the object space.
    this.#slotBytes = BLOCK_AT + Math.ceil((2 * blockSize + CHUNK_HEADER_BYTES) / 4096) * 4096;
    this.#memory = new SharedArrayBuffer(this.#slotBytes * this.slotCount);
    // Before any slot is touched: each 4 MiB block otherwise costs 1 024 page faults on first use.
    adviseHugePages(this.#memory);
    for (let slot = this.slotCount - 1; slot >= 0; slot--) this.#free.push(slot);
    this.#start(options.threads);
  }

  /** Starts the pool's `threads` (the cores, at most 4, by default). */
  #start(threads = Math.min(4, Math.max(1, availableParallelism()))): void {
    for (let started = 0; started < threads; started++) {
      const worker = new Worker(new URL("./block-worker.ts", import.meta.url));
      // Referenced only while it has jobs (see #run): an idle pool never keeps the process alive, and a
      // pool waiting on an unreferenced worker made Bun's event loop spin (a core busy doing nothing).
      worker.unref();
      const ended = new Promise<void>((resolve) => worker.addEventListener("close", () => resolve(), { once: true }));
      const thread: Thread = { worker, busy: 0, ended };
      worker.onmessage = (event: MessageEvent<BlockReply>) => this.#settle(event.data);
      worker.onerror = (event) => this.#fail(new Error(`block worker: ${event.message}`));
      worker.postMessage({ kind: "start", memory: this.#memory } satisfies ToBlockWorker);
      this.#threads.push(thread);
    }
  }

  /** A slot's block memory, `length` bytes (≤ blockSize); waits while every slot is taken. */
  async take(length: number): Promise<Buffer> {
    while (this.#free.length === 0) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    const slot = this.#free.pop()!;
    return Buffer.from(this.#memory, slot * this.#slotBytes + BLOCK_AT, length);
  }

  /** Gives back the slot of a block or object view from this pool once nothing reads it any more (null: nothing). */
  give(view: Uint8Array | null | undefined): void {
    if (!view || view.buffer !== this.#memory) return;
    this.#free.push(Math.floor(view.byteOffset / this.#slotBytes));
    this.#waiting.shift()?.();
  }

  /** Where the chunk object of the block in `data`'s slot goes (read a stored chunk into it, then `restore`). */
  objectSpace(data: Uint8Array): Buffer {
    return Buffer.from(this.#memory, this.#slotOf(data) * this.#slotBytes + BLOCK_AT + this.blockSize, this.blockSize + CHUNK_HEADER_BYTES);
  }

  /** The block's sha256, or null when it is all zeros. */
  async hash(data: Uint8Array): Promise<string | null> {
    const reply = await this.#run({ kind: "hash", at: data.byteOffset, length: data.length });
    return reply.hash ?? null;
  }

  /** The block's chunk object (header, then zstd or raw), in its slot; `data` is the block as `take` gave it. */
  async encode(data: Uint8Array, compression: Compression): Promise<Buffer> {
    const blockAt = this.#slotOf(data) * this.#slotBytes + BLOCK_AT;
    if (data.byteOffset !== blockAt) throw new Error("not a block as take() gave it");
    const level = compression.kind === "zstd" ? compression.level : 0;
    const reply = await this.#run({ kind: "encode", at: blockAt, length: data.length, objectAt: blockAt + this.blockSize, level });
    return Buffer.from(this.#memory, reply.objectAt!, reply.objectLength!);
  }

  /**
   * Restores the stored block of `data`'s slot: its chunk object read from
   * `chunkFile` (a local file any thread may read) into `objectSpace(data)`,
   * or already put there by the caller (`objectLength` bytes); decoded and
   * checked against `hash` and the slot's length on a worker thread, which
   * then writes it at `target.position` of the file open as `target.fd`
   * (a block that fails its check is never written). Undefined once it is
   * written, else why the chunk cannot give it (missing, damaged). A chunk
   * file that cannot be read, or a target that cannot be written, rejects.
   */
  async restore(
    data: Uint8Array,
    chunk: { readonly hash: string; readonly chunkFile?: string; readonly objectLength?: number },
    target: { readonly fd: number; readonly position: number },
  ): Promise<string | undefined> {
    const blockAt = this.#slotOf(data) * this.#slotBytes + BLOCK_AT;
    const reply = await this.#run({ kind: "restore", ...chunk, ...target, objectAt: blockAt + this.blockSize, capacity: this.blockSize + CHUNK_HEADER_BYTES, at: blockAt, length: data.length });
    return reply.problem;
  }

  /**
   * Ends the threads: jobs not answered yet fail at once, though a thread
   * still runs those it was given before it stops. Resolves once every
   * thread has ended: awaited before a file that restore jobs write to is
   * closed (its descriptor number could be another file's by then).
   */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#here?.free();
      for (const { worker } of this.#threads) worker.postMessage({ kind: "stop" } satisfies ToBlockWorker);
      this.#fail(new Error("block workers closed"));
      // Referenced until they end, so that awaiting it keeps the process alive.
      for (const { worker } of this.#threads) worker.ref();
    }
    return Promise.all(this.#threads.map((thread) => thread.ended)).then(() => undefined);
  }

  #slotOf(view: Uint8Array): number {
    if (view.buffer !== this.#memory) throw new Error("not a block slot of this pool");
    return Math.floor(view.byteOffset / this.#slotBytes);
  }

  /**
   * Runs a job on the least busy thread; with none, here and now. A thread's
   * start (a JavaScript context, its modules) costs some 20–40 ms of CPU in
   * this VM, more than the jobs of a small change: a hinted 1 % incremental
   * of a 4 GiB image hashes 20 blocks (about 50 ms of sha256) and compresses
   * 10, while this thread mostly waits for their reads.
   */
  #run(job: Job): Promise<BlockReply> {
    if (this.#closed) return Promise.reject(new Error("block workers closed"));
    if (this.#threads.length === 0) {
      if (!this.#here) {
        const { BlockJobs } = require("./block-jobs.ts") as typeof import("./block-jobs.ts");
        this.#here = new BlockJobs(this.#memory);
      }
      const reply = this.#here.run({ ...job, id: 0 } as BlockJob);
      return reply.error !== undefined ? Promise.reject(replyError(reply)) : Promise.resolve(reply);
    }
    const thread = this.#threads.reduce((best, next) => (next.busy < best.busy ? next : best));
    const id = this.#nextId++;
    if (thread.busy++ === 0) thread.worker.ref();
    return new Promise<BlockReply>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, thread });
      thread.worker.postMessage({ ...job, id } as ToBlockWorker);
    });
  }

  #settle(reply: BlockReply): void {
    const pending = this.#pending.get(reply.id);
    if (!pending) return;
    this.#pending.delete(reply.id);
    if (--pending.thread.busy === 0) pending.thread.worker.unref();
    if (reply.error !== undefined) pending.reject(replyError(reply));
    else pending.resolve(reply);
  }

  #fail(error: Error): void {
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      pending.reject(error);
    }
    for (const thread of this.#threads) {
      thread.busy = 0;
      thread.worker.unref();
    }
  }
}

/** A failed job's error, with its errno code. */
function replyError(reply: BlockReply): Error {
  return Object.assign(new Error(`block worker: ${reply.error}`), reply.code ? { code: reply.code } : {});
}
