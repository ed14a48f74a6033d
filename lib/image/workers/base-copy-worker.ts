/**
 * The thread that copies a new version's block list from its base on
 * SQLite (see lib/image/base-copy.ts): a connection of its own to the
 * catalog file, one transaction per range of indexes. Between ranges it
 * steps aside while the backup's thread wants the write lock, and stops
 * when asked (the flags in `control`, see base-copy.ts' CONTROL). Posts `{ done: true }`,
 * or the error that ended the copy, and ends.
 */
import { BlaineError, ExitCode, errorMessage } from "../../errors.ts";
import { ImageCatalog } from "../catalog/image-catalog.ts";
import { openImageSql } from "../catalog/sql.ts";
import { CONTROL, type BaseCopyJob, type BaseCopyReply } from "../base-copy.ts";

declare const self: Worker;

self.onmessage = async (event: MessageEvent<BaseCopyJob>) => {
  const job = event.data;
  const control = new Int32Array(job.control);
  let reply: BaseCopyReply = { done: true };
  let catalog: ImageCatalog | undefined;
  try {
    catalog = new ImageCatalog(await openImageSql(job.file, { create: false }));
    for (let from = 0; from < job.blockCount; ) {
      if (Atomics.load(control, CONTROL.stop) === 1) break;
      const wanted = Atomics.load(control, CONTROL.wanted);
      if (wanted > 0) {
        // The backup's thread goes first; it wakes this one when it is done.
        Atomics.wait(control, CONTROL.wanted, wanted, 50);
        continue;
      }
      Atomics.store(control, CONTROL.active, 1);
      if (Atomics.load(control, CONTROL.wanted) > 0) {
        // Both asked at once: this one steps back.
        Atomics.store(control, CONTROL.active, 0);
        Atomics.notify(control, CONTROL.active);
        continue;
      }
      try {
        await catalog.copyBaseBlocks(job.uid, job.baseUid, from, Math.min(job.blockCount, from + job.rowsPerCopy));
      } finally {
        Atomics.store(control, CONTROL.active, 0);
        Atomics.notify(control, CONTROL.active);
      }
      from += job.rowsPerCopy;
    }
  } catch (error) {
    reply = { error: errorMessage(error), exitCode: error instanceof BlaineError ? error.exitCode : ExitCode.failure };
  }
  await catalog?.close().catch(() => {});
  self.postMessage(reply);
  // Ends the thread (terminate() from the backup's thread left Bun's event loop waiting on it).
  process.exit(0);
};
