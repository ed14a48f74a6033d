import type { ChunkStore } from "../store/chunk-store.ts";
import { crashPoint } from "../../crash-point.ts";
import { batches } from "../../pipeline/bounded.ts";
import type { ImageCatalog } from "../catalog/image-catalog.ts";
import type { EncodedBlock } from "./types.ts";

/**
 * Block rows per transaction. Each transaction costs a round of locks and a
 * commit: at 2 000 rows a 1 TiB version's 262 144 rows took twice as long
 * on PostgreSQL as at 10 000 (131 commits against 27), and a writer holds
 * the catalog for a tenth of a second at most either way.
 */
export const WRITER_BATCH_ROWS = 10_000;

export interface VersionWriterOptions {
  readonly catalog: ImageCatalog;
  readonly uid: string;
  /** Rows per transaction. @default WRITER_BATCH_ROWS */
  readonly batchSize?: number;
  readonly signal?: AbortSignal;
  /** The store the chunks went to: flushed before rows that reference new chunks are recorded. */
  readonly store?: Pick<ChunkStore, "flush">;
}

/**
 * The sink: records the version's new and changed block rows in bulk, a
 * transaction per batch, after their chunks are stored (the chunks were
 * claimed by dedupBlocks, so no cleanup deleted them meanwhile).
 */
export async function writeVersionBlocks(blocks: AsyncIterable<EncodedBlock>, options: VersionWriterOptions): Promise<void> {
  for await (const batch of batches(blocks, { size: options.batchSize ?? WRITER_BATCH_ROWS, maxWaitMs: 2000 })) {
    options.signal?.throwIfAborted();
    const rows = batch.map((block) => ({ idx: block.index, hash: block.hash, size: block.length, valid: true }));
    const stored = batch.flatMap((block) => (block.hash && block.storedSize !== undefined ? [{ hash: block.hash, size: block.storedSize }] : []));
    if (stored.length > 0) await options.store?.flush?.();
    await options.catalog.writeBlocks(options.uid, rows, stored);
    crashPoint("image-blocks-written");
  }
}
