import type { FileHandle } from "node:fs/promises";
import { mapBounded } from "../../pipeline/bounded.ts";
import { blockHash } from "../store/chunk-format.ts";
import type { BlockBuffers } from "./block-buffers.ts";
import type { BackupCounts, BlockRef, ReadBlock } from "./types.ts";

export interface ReadBlocksOptions {
  readonly source: FileHandle;
  /** Where messages say a short read happened. */
  readonly sourceName: string;
  /** Blocks read at once (each holds one block in memory). */
  readonly concurrency: number;
  readonly counts: BackupCounts;
  /** Where block buffers come from (and go back to, from later stages). */
  readonly buffers?: BlockBuffers;
  readonly signal?: AbortSignal;
}

let zeros = new Uint8Array(0);

/** Whether a block is all zeros (compared against a shared zero buffer: memcmp speed). */
export function isZero(data: Uint8Array): boolean {
  if (zeros.length < data.length) zeros = new Uint8Array(data.length);
  return Buffer.compare(data, zeros.subarray(0, data.length)) === 0;
}

/** Reads one block whole (a short read is an error: the source shrank while it was read). */
export async function readBlock(source: FileHandle, block: BlockRef, sourceName: string, buffers?: BlockBuffers): Promise<Uint8Array> {
  const data = buffers ? buffers.take(block.length) : Buffer.allocUnsafe(block.length);
  let done = 0;
  while (done < block.length) {
    const { bytesRead } = await source.read(data, done, block.length - done, block.offset + done);
    if (bytesRead === 0) throw new Error(`${sourceName}: ended at ${block.offset + done} while reading block ${block.index}; did the source shrink?`);
    done += bytesRead;
  }
  return data;
}

/**
 * Reads the blocks (several at once, on the I/O threads) and hashes each
 * (sha256); all-zero blocks come out with a null hash and no data. Results
 * come in the order they finish.
 */
export function readBlocks(refs: AsyncIterable<BlockRef>, options: ReadBlocksOptions): AsyncGenerator<ReadBlock> {
  return mapBounded(
    refs,
    async (block): Promise<ReadBlock> => {
      if (block.knownZero) return { ...block, hash: null, data: null };
      const data = await readBlock(options.source, block, options.sourceName, options.buffers);
      options.counts.bytesRead += data.length;
      if (isZero(data)) {
        options.buffers?.give(data);
        return { ...block, hash: null, data: null };
      }
      return { ...block, hash: blockHash(data), data };
    },
    { concurrency: options.concurrency, signal: options.signal },
  );
}
