import { BlaineError, type ExitCode } from "../errors.ts";
import type { ImageCatalog } from "./catalog/image-catalog.ts";
import type { WriterGate } from "./catalog/sql.ts";

/**
 * The Int32 flags the copy's thread (workers/base-copy-worker.ts) shares
 * with the backup's. Here, not in the worker's module: importing that one
 * would run its onmessage assignment on this thread (and keep it alive).
 */
export const CONTROL = {
  /** Transactions the backup's thread is in or waiting to begin. */
  wanted: 0,
  /** 1 while the copy's thread is in a transaction. */
  active: 1,
  /** 1: copy no further range. */
  stop: 2,
  length: 3,
} as const;

/** What the copy's thread is asked: the catalog file, the versions, the indexes [0, blockCount) in ranges of `rowsPerCopy`. */
export interface BaseCopyJob {
  readonly file: string;
  readonly uid: string;
  readonly baseUid: string;
  readonly blockCount: number;
  readonly rowsPerCopy: number;
  readonly control: SharedArrayBuffer;
}

export type BaseCopyReply = { readonly done: true } | { readonly error: string; readonly exitCode: ExitCode };

/**
 * Block rows per copy transaction: about a millisecond of SQLite's write
 * lock, the longest the backup's own transactions wait for the copy; a
 * 4 GiB image of 128 KiB blocks is copied in 32 commits, a 1 TiB image of
 * 4 MiB blocks in 256.
 */
export const BASE_COPY_ROWS = 1024;

/**
 * Block rows up to which SQLite's copy runs on the backup's thread after
 * all. Starting the copy's thread (a JavaScript context, a connection, the
 * schema checked) cost 22 ms of CPU in a 1 % incremental of a 4 GiB image
 * (perf), a ninth of the whole backup's, taken from the threads hashing;
 * copying its 1 024 rows here cost 1.8 ms. Up to 4 096 rows (a 16 GiB
 * image of 4 MiB blocks) the copy here is cheaper than the thread.
 */
export const BASE_COPY_HERE_ROWS = 4096;

/**
 * Block rows up to which a backup that reads only a small change (see
 * backup-run.ts' SMALL_CHANGE_BYTES) copies its base's list on its own
 * thread: that thread mostly waits for its reads, so the ranges fit between
 * them, and the copy's thread was pure cost on two cores: its start, a
 * connection whose every commit made the backup's connection read its pages
 * again, a third busy thread. A 1 % send of a 4 GiB volume (32 768 rows):
 * 30-60 ms less CPU (median of 6-8 sends each, three times, load ~3-4).
 * 65 536 rows: 8 GiB of 128 KiB chunks, 256 GiB of 4 MiB blocks.
 */
export const BASE_COPY_HERE_ROWS_SMALL_CHANGE = 65_536;

/**
 * A new version's block list copied from its base's while the backup's
 * pipeline runs, a range of indexes per transaction. Before, one INSERT …
 * SELECT before the first block was read was the largest fixed cost of a
 * small incremental backup (tens of milliseconds for tens of thousands of
 * rows, all of it on the one thread that runs the pipeline).
 *
 * On SQLite a thread of its own copies over a connection of its own, and
 * steps aside whenever this thread wants the write lock (the catalog's
 * transactions pass a gate), so the backup's claims and block rows wait
 * a range at most, without blocking this thread; a list of at most
 * BASE_COPY_HERE_ROWS (BASE_COPY_HERE_ROWS_SMALL_CHANGE for a backup of a
 * small change) is copied here instead, a range between the pipeline's turns. On PostgreSQL the server
 * does the work: the ranges are sent from here, between the pipeline's
 * turns. Rows the backup wrote first stay (the copy adds only the indexes
 * the version lacks); a row the backup writes later replaces the copied
 * one. `done` settles when every range is copied, or with the first error
 * (the base removed meanwhile): a backup awaits it before its version is
 * finished.
 */
export class BaseCopy {
  readonly done: Promise<void>;
  readonly #control = new Int32Array(new SharedArrayBuffer(CONTROL.length * 4));

  constructor(
    catalog: ImageCatalog,
    uid: string,
    baseUid: string,
    blockCount: number,
    options: { readonly rowsPerCopy?: number; readonly hereRows?: number } = {},
  ) {
    const { rowsPerCopy = BASE_COPY_ROWS, hereRows = BASE_COPY_HERE_ROWS } = options;
    const { file, passWritesThrough } = catalog.sql;
    if (file && passWritesThrough && blockCount > hereRows) {
      passWritesThrough(this.#gate());
      const job = { file, uid, baseUid, blockCount, rowsPerCopy, control: this.#control.buffer as SharedArrayBuffer };
      this.done = this.#onThread(job).finally(() => passWritesThrough(undefined));
    } else {
      this.done = this.#here(catalog, uid, baseUid, blockCount, rowsPerCopy);
    }
    // Its error is the backup's when it awaits `done`; until then it is no unhandled rejection.
    this.done.catch(() => {});
  }

  /** Copies no further range (a backup abandoned or interrupted); settles when the range being copied is. */
  async stop(): Promise<void> {
    Atomics.store(this.#control, CONTROL.stop, 1);
    Atomics.notify(this.#control, CONTROL.wanted);
    await this.done.catch(() => {});
  }

  /** This thread's side of the flags: wanted while in (or waiting for) a transaction; waits while the copy is in one. */
  #gate(): WriterGate {
    const control = this.#control;
    return {
      async enter() {
        Atomics.add(control, CONTROL.wanted, 1);
        while (Atomics.load(control, CONTROL.active) === 1) await Atomics.waitAsync(control, CONTROL.active, 1).value;
      },
      leave() {
        Atomics.sub(control, CONTROL.wanted, 1);
        Atomics.notify(control, CONTROL.wanted);
      },
    };
  }

  #onThread(job: BaseCopyJob): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      // Referenced while it copies, like the block workers while they have jobs: a backup awaiting `done` with
      // nothing else to do keeps running. It ends itself once it has answered.
      const worker = new Worker(new URL("./workers/base-copy-worker.ts", import.meta.url));
      let answered = false;
      worker.onmessage = (event: MessageEvent<BaseCopyReply>) => {
        answered = true;
        const reply = event.data;
        if ("done" in reply) resolve();
        else reject(new BlaineError(reply.error, reply.exitCode));
      };
      const died = (why: string) => {
        if (answered) return;
        answered = true;
        // A thread that died in a transaction never said so: nothing waits for it any more.
        Atomics.store(this.#control, CONTROL.active, 0);
        Atomics.notify(this.#control, CONTROL.active);
        reject(new Error(`base copy worker: ${why}`));
      };
      worker.onerror = (event) => died(event.message);
      // Its answer is delivered before its end; a tick's grace all the same.
      worker.addEventListener("close", () => setTimeout(() => died("ended without an answer"), 10));
      worker.postMessage(job);
    });
  }

  async #here(catalog: ImageCatalog, uid: string, baseUid: string, blockCount: number, rowsPerCopy: number): Promise<void> {
    for (let from = 0; from < blockCount && Atomics.load(this.#control, CONTROL.stop) === 0; from += rowsPerCopy) {
      // After the events waiting now (a read done, a worker's reply), never ahead of them.
      await new Promise<void>((resolve) => setImmediate(resolve));
      await catalog.copyBaseBlocks(uid, baseUid, from, Math.min(blockCount, from + rowsPerCopy));
    }
  }
}
