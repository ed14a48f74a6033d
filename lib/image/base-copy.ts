import type { ImageCatalog } from "./catalog/image-catalog.ts";

/**
 * Block rows per copy transaction. On SQLite a transaction of 4 096 rows
 * holds the (synchronous) connection for a few milliseconds, and the
 * pipeline's reads keep going meanwhile; a 4 GiB image of 128 KiB blocks
 * is copied in 8 commits, a 1 TiB image of 4 MiB blocks in 64.
 */
export const BASE_COPY_ROWS = 4096;

/**
 * A new version's block list copied from its base's, a range of indexes
 * per transaction, between the pipeline's turns on the event loop: the
 * copy (tens of milliseconds for tens of thousands of rows, all of it work
 * for the one thread that talks to the catalog) is done while the pipeline
 * waits for its reads and worker threads, rather than before the first
 * block is read, where it was the largest fixed cost of a small
 * incremental backup. Rows the backup wrote first stay (the copy adds only
 * the indexes the version lacks); a row the backup writes later replaces
 * the copied one. `done` settles when every range is copied, or with the
 * first error (the base removed meanwhile): a backup awaits it before its
 * version is finished.
 */
export class BaseCopy {
  readonly done: Promise<void>;
  #stopped = false;

  constructor(catalog: ImageCatalog, uid: string, baseUid: string, blockCount: number, rowsPerCopy = BASE_COPY_ROWS) {
    this.done = (async () => {
      for (let from = 0; from < blockCount; from += rowsPerCopy) {
        // After the events waiting now (a read done, a worker's reply), never ahead of them.
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (this.#stopped) return;
        await catalog.copyBaseBlocks(uid, baseUid, from, Math.min(blockCount, from + rowsPerCopy));
      }
    })();
    // Its error is the backup's when it awaits `done`; until then it is no unhandled rejection.
    this.done.catch(() => {});
  }

  /** Copies no further range (a backup abandoned or interrupted); settles when the range being copied is. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.done.catch(() => {});
  }
}
