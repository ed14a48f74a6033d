/**
 * A copy worker thread: receives batches of jobs (copies, and placements of
 * copied temps once their intents are committed), runs them with plain
 * synchronous I/O, posts the outcomes back. Errors travel as data (with
 * their errno code) so the copier can tell "vanished" from "disk full".
 */
import { crashPoint } from "../crash-point.ts";
import { errnoCode, errorMessage } from "../errors.ts";
import { placeFile } from "../fs/place-file.ts";
import { copyFileSync, COPY_BUFFER_SIZE } from "./copy-file-sync.ts";
import type { WorkerJob } from "./copy-pool.ts";

declare const self: Worker;
const buffer = Buffer.allocUnsafe(COPY_BUFFER_SIZE);

function run(job: WorkerJob): unknown {
  if (job.kind === "copy") return copyFileSync(job, buffer);
  placeFile(job.temp, job.target);
  // The recovery tests kill the run half way through a batch's placements, wherever they run.
  crashPoint("mid-placement");
  return undefined;
}

self.onmessage = (event: MessageEvent<string>) => {
  const jobs = JSON.parse(event.data) as { id: number; job: WorkerJob }[];
  const replies = jobs.map(({ id, job }) => {
    try {
      return { id, ok: true as const, outcome: run(job) };
    } catch (error) {
      return { id, ok: false as const, message: errorMessage(error), code: errnoCode(error) };
    }
  });
  self.postMessage(JSON.stringify(replies));
};
