import { mapBounded } from "../../pipeline/bounded.ts";
import { encodeChunk, type Compression } from "../store/chunk-format.ts";
import type { BlockBuffers } from "./block-buffers.ts";
import type { EncodedBlock, PlannedBlock } from "./types.ts";

export interface EncodeChunksOptions {
  readonly compression: Compression;
  /** Blocks compressed at once (Bun's zstd runs on its I/O threads: both cores). */
  readonly concurrency: number;
  /** Where a block's buffer goes back once its chunk object is made. */
  readonly buffers?: BlockBuffers;
  readonly signal?: AbortSignal;
}

/**
 * Bytes encoded between two garbage collections. Each block encoded leaves
 * up to two block-sized buffers behind (zstd's output, the framed object)
 * once its chunk is written; JavaScriptCore collects such buffers only when
 * its small heap grows, by which time a backup held hundreds of megabytes
 * of them. A collection every 32 MiB keeps the peak near what is live.
 */
const COLLECT_EVERY_BYTES = 32 * 1024 * 1024;
let encodedSinceCollect = 0;

/** Makes the chunk object of every block to store (compressed, with its header); others pass through. */
export function encodeChunks(blocks: AsyncIterable<PlannedBlock>, options: EncodeChunksOptions): AsyncGenerator<EncodedBlock> {
  return mapBounded(
    blocks,
    async (block): Promise<EncodedBlock> => {
      if (block.action !== "store" || !block.data) return { ...block, object: null };
      const object = await encodeChunk(block.data, options.compression);
      options.buffers?.give(block.data);
      encodedSinceCollect += block.data.length;
      if (encodedSinceCollect >= COLLECT_EVERY_BYTES) {
        encodedSinceCollect = 0;
        Bun.gc(true);
      }
      return { ...block, data: null, object };
    },
    { concurrency: options.concurrency, signal: options.signal },
  );
}
