import { lstatSync } from "node:fs";
import { fsPath } from "../fs/byte-names.ts";
import type { ExcludeRule } from "../glob.ts";
import type { FileEntry } from "../pipeline/types.ts";
import { decodeFromWorker, encodeCredit, encodeStart } from "./walk-messages.ts";
import { RecordKind, walkTree, type WalkRecord } from "./walk-tree.ts";

export interface WalkOptions {
  readonly excludes?: readonly ExcludeRule[];
  /** Absolute paths never entered (the archive disks, the catalog). */
  readonly skipPaths?: ReadonlySet<string>;
  readonly signal?: AbortSignal;
  /**
   * An unreadable directory or file: reported, the walk goes on. `gone` when
   * it no longer exists (ENOENT); otherwise it is there but could not be read.
   */
  readonly onError?: (path: string, message: string, gone?: boolean) => void;
  /** Fifos, sockets and devices are not archived. */
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
 * of their paths' bytes, the catalog's order (see walkTree). The file-system
 * work runs on a worker thread, which sends ready records a bounded number
 * of chunks ahead: on the main thread, the walk costs only turning them
 * into entries. Stopping early (return, an error, `signal`) ends the worker.
 * Sources without a directory among them (single files) need no worker.
 */
export async function* walk(sources: readonly string[], options: WalkOptions = {}): AsyncGenerator<FileEntry> {
  const worker = sources.some(isDirectory) ? startWorker(sources, options) : undefined;
  if (worker) yield* receive(worker, options);
  else yield* walkInThread(sources, options);
}

/** Whether a source is a directory to walk: only then is a worker worth its start (a few ms). */
function isDirectory(source: string): boolean {
  try {
    return lstatSync(fsPath(source)).isDirectory();
  } catch {
    // Reported by the walk itself.
    return false;
  }
}

function startWorker(sources: readonly string[], options: WalkOptions): Worker | undefined {
  let worker: Worker;
  try {
    worker = new Worker(new URL("./walk-worker.ts", import.meta.url));
  } catch {
    // No worker threads here (an unusual runtime or bundle): the same walk, in this thread.
    return undefined;
  }
  // Kept alive only while the walk waits for it (see receive), so an abandoned walk never holds the process.
  worker.unref();
  worker.postMessage(
    encodeStart({ sources, excludes: options.excludes ?? [], skipPaths: [...(options.skipPaths ?? [])] }),
  );
  worker.postMessage(encodeCredit(CREDIT_WINDOW));
  return worker;
}

async function* receive(worker: Worker, options: WalkOptions): AsyncGenerator<FileEntry> {
  const arrived: string[] = [];
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const fail = (error: Error) => {
    failure ??= error;
    wake?.();
  };
  worker.onmessage = (event: MessageEvent<string>) => {
    arrived.push(event.data);
    wake?.();
  };
  worker.onerror = (event) => fail(new Error(`walk worker failed: ${event.message}`));
  worker.addEventListener("close", () => fail(new Error("walk worker exited before the walk's end")));
  const onAbort = () => wake?.();
  options.signal?.addEventListener("abort", onAbort);
  try {
    for (;;) {
      options.signal?.throwIfAborted();
      const message = arrived.shift();
      if (message === undefined) {
        if (failure) throw failure;
        worker.ref();
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        worker.unref();
        continue;
      }
      const chunk = decodeFromWorker(message);
      if (chunk.kind === "failed") throw new Error(chunk.message);
      // Granted as this chunk is taken, so the worker walks on while it is consumed.
      if (!chunk.last) worker.postMessage(encodeCredit(1));
      for (const record of chunk.records) {
        options.signal?.throwIfAborted();
        const entry = deliver(record, options);
        if (entry) yield entry;
      }
      if (chunk.last) return;
    }
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    worker.terminate();
  }
}

async function* walkInThread(sources: readonly string[], options: WalkOptions): AsyncGenerator<FileEntry> {
  for (const record of walkTree(sources, options.excludes ?? [], options.skipPaths)) {
    options.signal?.throwIfAborted();
    const entry = deliver(record, options);
    if (entry) yield entry;
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
        linkTarget: record[8] ?? null,
      };
    case RecordKind.error:
      options.onError?.(record[0], record[2], record[3]);
      return undefined;
    case RecordKind.skip:
      options.onSkip?.(record[0], record[2]);
      return undefined;
  }
}
