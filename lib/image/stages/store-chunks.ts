import { crashPoint } from "../../crash-point.ts";
import { mapBounded } from "../../pipeline/bounded.ts";
import type { ChunkStore } from "../store/chunk-store.ts";
import type { BackupCounts, EncodedBlock } from "./types.ts";

export interface StoreChunksOptions {
  readonly store: ChunkStore;
  readonly counts: BackupCounts;
  /** Chunk writes in flight. */
  readonly concurrency: number;
  readonly signal?: AbortSignal;
}

/** Writes each new chunk object to the store (atomically) before its block row is recorded. */
export function storeChunks(blocks: AsyncIterable<EncodedBlock>, options: StoreChunksOptions): AsyncGenerator<EncodedBlock> {
  return mapBounded(
    blocks,
    async (block): Promise<EncodedBlock> => {
      if (!block.object || !block.hash) return block;
      await options.store.putChunk(block.hash, block.object);
      crashPoint("image-chunk-stored");
      options.counts.bytesWritten += block.object.length;
      options.counts.blocksStored++;
      return { ...block, object: null, storedSize: block.object.length };
    },
    { concurrency: options.concurrency, signal: options.signal },
  );
}
