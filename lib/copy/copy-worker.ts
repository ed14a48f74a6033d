/**
 * A copy worker thread: receives batches of jobs (copies, and placements of
 * copied temps once their intents are committed), runs them with plain
 * synchronous I/O, posts the outcomes back. Errors travel as data (with
 * their errno code) so the copier can tell "vanished" from "disk full".
 */
import { crashPoint } from "../crash-point.ts";
import { errnoCode, errorMessage } from "../errors.ts";
import { DataTreeDirs } from "../fs/data-tree-dirs.ts";
import { placeFile } from "../fs/place-file.ts";
import { copyFileSync, COPY_BUFFER_SIZE } from "./copy-file-sync.ts";
import { CopyProgress } from "./copy-progress.ts";
import { CopyDigests } from "./copy-digests.ts";
import { decodeJobs, encodeProgress, encodeReplies, type CopySettledData, type JobFailure, type JobOutcome, type Reply, type WorkerJob } from "./worker-messages.ts";

declare const self: Worker;
const buffer = Buffer.allocUnsafe(COPY_BUFFER_SIZE);
/** This thread's digest threads, started on the first copy that asks for checksums. */
const digests = new CopyDigests();

const failureOf = (error: unknown): JobFailure => ({ message: errorMessage(error), code: errnoCode(error) });

function run(id: number, job: WorkerJob): JobOutcome {
  switch (job.kind) {
    case "copy":
      // A file copied alone may be large: the run hears how far it got (a small file never says).
      return copyFileSync(job, buffer, new CopyProgress((bytesSoFar) => self.postMessage(encodeProgress(id, bytesSoFar))), digests);
    case "copies":
      return job.copies.map((copy): CopySettledData => {
        try {
          return { ok: true, outcome: copyFileSync(copy, buffer) };
        } catch (error) {
          return { ok: false, ...failureOf(error) };
        }
      });
    case "placements": {
      // Directories checked for this job only: the main thread may remove some between jobs.
      const dirs = new DataTreeDirs(job.root);
      return job.moves.map((move) => {
        try {
          placeFile(move.temp, move.target, dirs);
        } catch (error) {
          return failureOf(error);
        }
        // The recovery tests kill the run half way through a batch's placements, wherever they run.
        crashPoint("mid-placement");
        return undefined;
      });
    }
  }
}

self.onmessage = (event: MessageEvent<string>) => {
  const replies = decodeJobs(event.data).map(({ id, job }) => {
    let reply: Reply;
    try {
      reply = { id, ok: true, outcome: run(id, job) };
    } catch (error) {
      reply = { id, ok: false, ...failureOf(error) };
    }
    return { id, job, reply };
  });
  self.postMessage(encodeReplies(replies));
};
