import { mapBounded } from "../../pipeline/bounded.ts";
import type { Compression } from "../store/chunk-format.ts";
import type { BlockWorkers } from "../workers/block-workers.ts";
import type { EncodedBlock, PlannedBlock } from "./types.ts";

export interface EncodeChunksOptions {
  readonly compression: Compression;
  /** Blocks compressed at once (on the workers' threads: every core). */
  readonly concurrency: number;
  /** The threads that compress, into each block's own slot (no buffer allocated per block). */
  readonly workers: BlockWorkers;
  readonly signal?: AbortSignal;
}

/**
 * Makes the chunk object of every block to store (zstd, with its header;
 * raw when zstd does not make it smaller) in the block's slot; others pass
 * through. The slot goes back once the object is stored (storeChunks).
 */
export function encodeChunks(blocks: AsyncIterable<PlannedBlock>, options: EncodeChunksOptions): AsyncGenerator<EncodedBlock> {
  return mapBounded(
    blocks,
    async (block): Promise<EncodedBlock> => {
      if (block.action !== "store" || !block.data) return { ...block, object: null };
      try {
        const object = await options.workers.encode(block.data, options.compression);
        return { ...block, data: null, object };
      } catch (error) {
        options.workers.give(block.data);
        throw error;
      }
    },
    { concurrency: options.concurrency, signal: options.signal },
  );
}
