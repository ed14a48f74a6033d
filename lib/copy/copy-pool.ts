import { availableParallelism } from "node:os";
import type { CopyJob, CopyOutcome } from "./copy-file-sync.ts";
import { LATENCY_BOUND_BELOW, type CopySettled } from "./builtin-copy.ts";
import type { CopyProgressHook } from "./copy-progress.ts";
import { decodeReplies, encodeJobs, type ReceivedProgress, type ReceivedReply, type WorkerJob } from "./worker-messages.ts";

interface PendingJob {
  resolve: (outcome: unknown) => void;
  reject: (error: Error) => void;
  /** A lone copy's bytes so far, as its worker says them (see CopyProgress). */
  onProgress?: CopyProgressHook;
}

/**
 * Worker threads that copy files, so copying uses every core while the
 * main thread walks, diffs and writes catalogs; they also place copied
 * temps in the data tree, which for small files costs about as much as the
 * copy. Jobs queued in the same tick travel in one message per worker
 * (small files are latency-bound: a message per file would cost more than
 * the copy). Workers start on the first job and never keep the process alive.
 */
export class CopyPool {
  readonly #size: number;
  readonly #workers: Worker[] = [];
  readonly #load: number[] = [];
  readonly #pending = new Map<number, PendingJob>();
  #outbox: { id: number; job: WorkerJob }[][] = [];
  #flushScheduled = false;
  #broken: Error | undefined;
  #nextId = 0;

  /** @param size Worker threads; default: the number of cores. */
  constructor(size = availableParallelism()) {
    this.#size = Math.max(1, size);
  }

  copy(request: CopyJob & { readonly onProgress?: CopyProgressHook }): Promise<CopyOutcome> {
    // Small files all go to the first worker: their cost is per file, most of
    // it on the main thread (walk, catalogs), and a second busy worker would
    // take the main thread's core. Large files spread, one per core.
    const latencyBound = request.expectedSize !== undefined && request.expectedSize < LATENCY_BOUND_BELOW;
    // The request goes as it is: encodeJobs sends only its plain fields (never the AbortSignal or hook it may carry).
    return this.#submit({ kind: "copy", ...request }, latencyBound ? 0 : undefined, request.onProgress) as Promise<CopyOutcome>;
  }

  /** Small files copied together by the first worker (see copy()), one reply for all; each settles on its own. */
  async copyMany(requests: readonly CopyJob[]): Promise<CopySettled[]> {
    return (await this.#submit({ kind: "copies", copies: requests }, 0)) as CopySettled[];
  }

  /**
   * Renames a batch's finished temps to their places in the data tree
   * (placeFile), in order, off the main thread (commits do not wait on it:
   * see writeManifest). On the last worker: the first one is busy with the
   * small copies of the batches after this one, and the two now run side
   * by side (one worker: the same). `root` is the disk's root: no
   * placement follows a symlink below it. Returns each placement's error, or undefined.
   */
  async placeAll(root: string, moves: readonly { temp: string; target: string }[]): Promise<(Error | undefined)[]> {
    return (await this.#submit({ kind: "placements", root, moves }, this.#size - 1)) as (Error | undefined)[];
  }

  #submit(job: WorkerJob, onWorker?: number, onProgress?: CopyProgressHook): Promise<unknown> {
    // A pool that lost a worker, or was closed, takes no more jobs: they would never be answered.
    if (this.#broken) return Promise.reject(this.#broken);
    this.#start();
    const id = this.#nextId++;
    const worker = onWorker ?? this.#leastLoaded();
    if (this.#load[worker]++ === 0) this.#workers[worker].ref();
    (this.#outbox[worker] ??= []).push({ id, job });
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => this.#flush());
    }
    return new Promise((resolve, reject) => this.#pending.set(id, { resolve, reject, onProgress }));
  }

  close(): void {
    this.#failAll(new Error("copy pool closed"));
    for (const worker of this.#workers) worker.terminate();
  }

  #start(): void {
    if (this.#workers.length > 0) return;
    for (let i = 0; i < this.#size; i++) {
      const worker = new Worker(new URL("./copy-worker.ts", import.meta.url));
      worker.unref();
      worker.onmessage = (event: MessageEvent<string>) => this.#receive(i, decodeReplies(event.data));
      worker.onerror = (event) => this.#failAll(new Error(`copy worker failed: ${event.message}`));
      worker.addEventListener("close", () => this.#failAll(new Error("copy worker exited")));
      this.#workers.push(worker);
      this.#load.push(0);
    }
  }

  #leastLoaded(): number {
    let best = 0;
    for (let i = 1; i < this.#load.length; i++) if (this.#load[i] < this.#load[best]) best = i;
    return best;
  }

  #flush(): void {
    this.#flushScheduled = false;
    const outbox = this.#outbox;
    this.#outbox = [];
    outbox.forEach((jobs, worker) => {
      if (!jobs || jobs.length === 0) return;
      try {
        // One JSON string per message: far cheaper to pass than cloning many small objects.
        this.#workers[worker].postMessage(encodeJobs(jobs));
      } catch (error) {
        for (const { id } of jobs) this.#settleWithError(worker, id, error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  #settleWithError(worker: number, id: number, error: Error): void {
    this.#done(worker);
    this.#pending.get(id)?.reject(error);
    this.#pending.delete(id);
  }

  #receive(worker: number, replies: (ReceivedReply | ReceivedProgress)[]): void {
    for (const reply of replies) {
      if ("progress" in reply) {
        this.#pending.get(reply.id)?.onProgress?.(reply.progress);
        continue;
      }
      this.#done(worker);
      const pending = this.#pending.get(reply.id);
      if (!pending) continue;
      this.#pending.delete(reply.id);
      if (reply.ok) pending.resolve(reply.outcome);
      else pending.reject(reply.error);
    }
  }

  /**
   * A worker is referenced only while it has jobs: an idle pool never keeps
   * the process alive, and a busy one lets the event loop sleep until a
   * reply (awaiting an unreferenced worker, Bun's loop polls without
   * blocking: a core spent spinning while large files copy).
   */
  #done(worker: number): void {
    if (this.#load[worker] > 0 && --this.#load[worker] === 0) this.#workers[worker]?.unref();
  }

  /** Every job waiting, and every later one, fails with `error`; no worker stays referenced. */
  #failAll(error: Error): void {
    this.#broken ??= error;
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
    this.#outbox = [];
    this.#load.fill(0);
    for (const worker of this.#workers) worker.unref();
  }
}
