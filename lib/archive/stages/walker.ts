import { lstatSync } from "node:fs";
import { fsPath } from "../../fs/byte-names.ts";
import type { ExcludeRule } from "../../glob.ts";
import type { FileEntry } from "./types.ts";
import { decodeFromWorker, encodeCredit, encodeStart } from "./walk-messages.ts";
import { RecordKind, TreeWalk, type WalkRecord } from "./walk-tree.ts";

export interface WalkOptions {
  readonly excludes?: readonly ExcludeRule[];
  /** Absolute paths never entered (the archive disks, the catalog). */
  readonly skipPaths?: ReadonlySet<string>;
  /** Set (an archive run): archive disks found in the sources are not archived (see TreeWalk), each reported through onSkip. */
  readonly archiveId?: string;
  readonly signal?: AbortSignal;
  /**
   * An unreadable directory or file: reported, the walk goes on. `gone` when
   * it no longer exists (ENOENT); otherwise it is there but could not be read.
   */
  readonly onError?: (path: string, message: string, gone?: boolean) => void;
  /** Fifos, sockets and devices are not archived; nor are archive disks (see archiveId). */
  readonly onSkip?: (path: string, reason: string) => void;
}

/**
 * Chunks the worker may have sent ahead of the consumer: bounds memory
 * (a chunk is at most ~1000 records, see walk-worker.ts) while keeping
 * the worker busy as the main thread works through a chunk.
 */
const CREDIT_WINDOW = 8;

/**
 * Walks the sources depth-first, yielding files and symlinks in the order
 * of their paths' bytes, the catalog's order (see TreeWalk). The file-system
 * work runs on a worker thread, which sends ready records a bounded number
 * of chunks ahead: on the main thread, the walk costs only turning them
 * into entries. Stopping early (return, an error, `signal`) ends the worker.
 * Sources without a directory among them (single files) need no worker.
 */
export async function* walk(sources: readonly string[], options: WalkOptions = {}): AsyncGenerator<FileEntry> {
  const worker = sources.some(isDirectory) ? startWorker(sources, options) : undefined;
  const chunks = worker ? new WorkerChunks(worker, options.signal) : new InThreadChunks(sources, options);
  // One generator over the chunks: a per-entry `yield*` into a second async
  // generator cost as much as the rest of the main thread's share of the walk.
  try {
    for (;;) {
      const chunk = await chunks.next();
      for (const record of chunk.records) {
        options.signal?.throwIfAborted();
        const entry = deliver(record, options);
        if (entry) yield entry;
      }
      if (chunk.last) return;
    }
  } finally {
    chunks.close();
  }
}

interface Chunk {
  readonly records: WalkRecord[];
  readonly last: boolean;
}

/** The walk in this thread, when no worker can start (or no source is a directory). */
class InThreadChunks {
  readonly #tree: TreeWalk;

  constructor(sources: readonly string[], options: WalkOptions) {
    this.#tree = new TreeWalk(sources, options.excludes ?? [], options.skipPaths, options.archiveId);
  }

  next(): Chunk {
    const records = this.#tree.take(IN_THREAD_CHUNK_RECORDS);
    return { records, last: this.#tree.done };
  }

  close(): void {}
}

/** Records per take of a walk on the main thread (no worker): small, as nothing runs beside it. */
const IN_THREAD_CHUNK_RECORDS = 64;

/** Whether a source is a directory to walk: only then is a worker worth its start (a few ms). */
function isDirectory(source: string): boolean {
  try {
    return lstatSync(fsPath(source)).isDirectory();
  } catch {
    // Reported by the walk itself.
    return false;
  }
}

/** A walk worker started ahead of its walk (see prestartWalkWorker), for the next walk() to take; `dead` once it failed or ended. */
let spare: { readonly worker: Worker; dead: boolean } | undefined;

/**
 * Starts a walk worker now for the next walk() to take. A worker takes
 * some 20 ms to start (a thread, its modules), which then overlaps what a
 * run does before it walks (opening the catalog and the disks): a run with
 * nothing to do waited for it. Unreferenced, so an unused one never holds
 * the process; `discardSpareWalkWorker` ends it.
 */
export function prestartWalkWorker(): void {
  if (spare) return;
  const worker = newWorker();
  if (!worker) return;
  const started = { worker, dead: false };
  // What happens before a walk takes it would go unheard: such a worker is not taken.
  const die = () => (started.dead = true);
  worker.addEventListener("error", die);
  worker.addEventListener("close", die);
  spare = started;
}

/** Ends a worker prestartWalkWorker started that no walk took. */
export function discardSpareWalkWorker(): void {
  spare?.worker.terminate();
  spare = undefined;
}

function newWorker(): Worker | undefined {
  let worker: Worker;
  try {
    worker = new Worker(new URL("./walk-worker.ts", import.meta.url));
  } catch {
    // No worker threads here (an unusual runtime or bundle): the same walk, in this thread.
    return undefined;
  }
  // Kept alive only while the walk waits for it (see WorkerChunks), so an abandoned walk never holds the process.
  worker.unref();
  return worker;
}

function startWorker(sources: readonly string[], options: WalkOptions): Worker | undefined {
  const taken = spare;
  spare = undefined;
  if (taken?.dead) taken.worker.terminate();
  const worker = taken && !taken.dead ? taken.worker : newWorker();
  if (!worker) return undefined;
  worker.postMessage(
    encodeStart({ sources, excludes: options.excludes ?? [], skipPaths: [...(options.skipPaths ?? [])], archiveId: options.archiveId }),
  );
  worker.postMessage(encodeCredit(CREDIT_WINDOW));
  return worker;
}

/**
 * The chunks a walk worker sends, one `next()` at a time. Taking a chunk
 * grants the worker credit for one more, so it walks on while this one is
 * consumed. The worker is referenced only while `next()` waits for it, so
 * an abandoned walk never holds the process.
 */
class WorkerChunks {
  readonly #worker: Worker;
  readonly #signal: AbortSignal | undefined;
  readonly #arrived: string[] = [];
  #failure: Error | undefined;
  #wake: (() => void) | undefined;
  readonly #onAbort = () => this.#wake?.();

  constructor(worker: Worker, signal: AbortSignal | undefined) {
    this.#worker = worker;
    this.#signal = signal;
    worker.onmessage = (event: MessageEvent<string>) => {
      this.#arrived.push(event.data);
      this.#wake?.();
    };
    worker.onerror = (event) => this.#fail(new Error(`walk worker failed: ${event.message}`));
    worker.addEventListener("close", () => this.#fail(new Error("walk worker exited before the walk's end")));
    signal?.addEventListener("abort", this.#onAbort);
  }

  async next(): Promise<Chunk> {
    for (;;) {
      this.#signal?.throwIfAborted();
      const message = this.#arrived.shift();
      if (message !== undefined) {
        const chunk = decodeFromWorker(message);
        if (chunk.kind === "failed") throw new Error(chunk.message);
        if (!chunk.last) this.#worker.postMessage(encodeCredit(1));
        return chunk;
      }
      if (this.#failure) throw this.#failure;
      this.#worker.ref();
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
      this.#worker.unref();
    }
  }

  close(): void {
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#worker.terminate();
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    this.#wake?.();
  }
}

/** A file or symlink record as its entry; an error or skip record reported (undefined). */
function deliver(record: WalkRecord, options: WalkOptions): FileEntry | undefined {
  switch (record[1]) {
    case RecordKind.file:
    case RecordKind.symlink:
      return {
        path: record[0],
        kind: record[1] === RecordKind.file ? "file" : "symlink",
        size: record[2],
        mtimeMs: record[3],
        mode: record[4],
        dev: record[5],
        ino: record[6],
        nlink: record[7],
        mtimeNsec: record[8],
        linkTarget: record[9] ?? null,
      };
    case RecordKind.error:
      options.onError?.(record[0], record[2], record[3]);
      return undefined;
    case RecordKind.skip:
      options.onSkip?.(record[0], record[2]);
      return undefined;
  }
}
