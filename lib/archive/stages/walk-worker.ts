/**
 * The walk worker thread: runs a TreeWalk (readdir, lstat, readlink, sorting,
 * excludes) off the main thread and posts its records in chunks, each one
 * only once the consumer has granted credit for it (see walk-messages.ts).
 */
import { errorMessage } from "../../errors.ts";
import { decodeToWorker, encodeChunk, encodeFailure, type ToWorker, type WalkStart } from "./walk-messages.ts";
import { TreeWalk, type WalkRecord } from "./walk-tree.ts";

declare const self: Worker;

/**
 * Records per chunk: the first chunks are small so the pipeline gets going
 * at once; later ones large, as a message costs about as much as a few
 * dozen records.
 */
const FIRST_CHUNK_RECORDS = 64;
const MAX_CHUNK_RECORDS = 1024;

let credit = 0;
let creditArrived: (() => void) | undefined;

self.onmessage = (event: MessageEvent<string>) => {
  let message: ToWorker;
  try {
    message = decodeToWorker(event.data);
  } catch (error) {
    reportFailure(error);
    return;
  }
  if (message.kind === "credit") {
    credit += message.chunks;
    creditArrived?.();
    return;
  }
  run(message).catch(reportFailure);
};

/** Anything but one path's error is a bug: it ends the walk with an exception on the main thread, never a hang. */
function reportFailure(error: unknown): void {
  const stack = error instanceof Error && error.stack ? `\n${error.stack}` : "";
  self.postMessage(encodeFailure(`walk worker: ${errorMessage(error)}${stack}`));
}

async function run(start: WalkStart): Promise<void> {
  const walk = new TreeWalk(start.sources, start.excludes, new Set(start.skipPaths), start.archiveId);
  for (let limit = FIRST_CHUNK_RECORDS; ; limit = Math.min(limit * 2, MAX_CHUNK_RECORDS)) {
    const chunk = walk.take(limit);
    await send(chunk, walk.done);
    if (walk.done) return;
  }
}

async function send(records: WalkRecord[], last: boolean): Promise<void> {
  while (credit === 0) {
    await new Promise<void>((resolve) => (creditArrived = resolve));
    creditArrived = undefined;
  }
  credit--;
  self.postMessage(encodeChunk(records, last));
}
