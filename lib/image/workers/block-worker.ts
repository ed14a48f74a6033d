/**
 * A block worker thread: runs the pool's jobs (block-jobs.ts: hash,
 * compress, restore) in its shared memory, so the main thread keeps reading
 * and talking to the catalog meanwhile (see block-workers.ts).
 */
import { BlockJobs } from "./block-jobs.ts";
import type { ToBlockWorker } from "./block-messages.ts";

declare const self: Worker;

let jobs: BlockJobs;

self.onmessage = (event: MessageEvent<ToBlockWorker>) => {
  const message = event.data;
  if (message.kind === "start") {
    jobs = new BlockJobs(message.memory);
    return;
  }
  if (message.kind === "stop") {
    jobs?.free();
    process.exit(0);
  }
  self.postMessage(jobs.run(message));
};
