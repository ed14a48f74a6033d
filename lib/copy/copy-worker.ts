/**
 * A copy worker thread: receives batches of jobs (copies, and placements of
 * copied temps once their intents are committed), runs them with plain
 * synchronous I/O, posts the outcomes back. Errors travel as data (with
 * their errno code) so the copier can tell "vanished" from "disk full".
 */
import { crashPoint } from "../crash-point.ts";
import { errnoCode, errorMessage } from "../errors.ts";
import { placeFile } from "../fs/place-file.ts";
import { copyFileSync, COPY_BUFFER_SIZE, type CopyOutcome } from "./copy-file-sync.ts";
import { decodeJobs, encodeReplies, type Reply, type WorkerJob } from "./worker-messages.ts";

declare const self: Worker;
const buffer = Buffer.allocUnsafe(COPY_BUFFER_SIZE);

function run(job: WorkerJob): CopyOutcome | undefined {
  if (job.kind === "copy") return copyFileSync(job, buffer);
  placeFile(job.temp, job.target);
  // The recovery tests kill the run half way through a batch's placements, wherever they run.
  crashPoint("mid-placement");
  return undefined;
}

self.onmessage = (event: MessageEvent<string>) => {
  const replies = decodeJobs(event.data).map(({ id, job }): Reply => {
    try {
      return { id, ok: true, outcome: run(job) };
    } catch (error) {
      return { id, ok: false, message: errorMessage(error), code: errnoCode(error) };
    }
  });
  self.postMessage(encodeReplies(replies));
};
