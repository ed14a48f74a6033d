import { mapBounded } from "../../pipeline/bounded.ts";
import { encodeChunk, type Compression } from "../store/chunk-format.ts";
import type { EncodedBlock, PlannedBlock } from "./types.ts";

export interface EncodeChunksOptions {
  readonly compression: Compression;
  /** Blocks compressed at once (Bun's zstd runs on its I/O threads: both cores). */
  readonly concurrency: number;
  readonly signal?: AbortSignal;
}

/** Makes the chunk object of every block to store (compressed, with its header); others pass through. */
export function encodeChunks(blocks: AsyncIterable<PlannedBlock>, options: EncodeChunksOptions): AsyncGenerator<EncodedBlock> {
  return mapBounded(
    blocks,
    async (block): Promise<EncodedBlock> => {
      if (block.action !== "store" || !block.data) return { ...block, object: null };
      return { ...block, data: null, object: await encodeChunk(block.data, options.compression) };
    },
    { concurrency: options.concurrency, signal: options.signal },
  );
}
