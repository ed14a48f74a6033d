/**
 * A copy worker thread: receives batches of copy jobs, runs them with plain
 * synchronous I/O, posts the outcomes back. Errors travel as data (with
 * their errno code) so the copier can tell "vanished" from "disk full".
 */
import { errnoCode, errorMessage } from "../errors.ts";
import { copyFileSync, COPY_BUFFER_SIZE, type CopyJob } from "./copy-file-sync.ts";

declare const self: Worker;
const buffer = Buffer.allocUnsafe(COPY_BUFFER_SIZE);

self.onmessage = (event: MessageEvent<string>) => {
  const jobs = JSON.parse(event.data) as { id: number; job: CopyJob }[];
  const replies = jobs.map(({ id, job }) => {
    try {
      return { id, ok: true as const, outcome: copyFileSync(job, buffer) };
    } catch (error) {
      return { id, ok: false as const, message: errorMessage(error), code: errnoCode(error) };
    }
  });
  self.postMessage(JSON.stringify(replies));
};
