import { crashPoint } from "../../crash-point.ts";
import { mapBounded } from "../../pipeline/bounded.ts";
import type { ChunkStore } from "../store/chunk-store.ts";
import type { BlockWorkers } from "../workers/block-workers.ts";
import type { BackupCounts, EncodedBlock } from "./types.ts";

export interface StoreChunksOptions {
  readonly store: ChunkStore;
  readonly counts: BackupCounts;
  /** Chunk writes in flight. */
  readonly concurrency: number;
  /** Where an object's slot goes back once it is stored. */
  readonly workers: BlockWorkers;
  readonly signal?: AbortSignal;
}

/** Writes each new chunk object to the store (atomically) before its block row is recorded; its slot then goes back. */
export function storeChunks(blocks: AsyncIterable<EncodedBlock>, options: StoreChunksOptions): AsyncGenerator<EncodedBlock> {
  return mapBounded(
    blocks,
    async (block): Promise<EncodedBlock> => {
      if (!block.object || !block.hash) return block;
      const storedSize = block.object.length;
      try {
        await options.store.putChunk(block.hash, block.object);
      } finally {
        options.workers.give(block.object);
      }
      crashPoint("image-chunk-stored");
      options.counts.bytesWritten += storedSize;
      options.counts.blocksStored++;
      return { ...block, object: null, storedSize };
    },
    { concurrency: options.concurrency, signal: options.signal },
  );
}
