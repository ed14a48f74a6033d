import type { FileHandle } from "node:fs/promises";
import { mapBounded } from "../../pipeline/bounded.ts";
import type { BlockWorkers } from "../workers/block-workers.ts";
import type { BackupCounts, BlockRef, ReadBlock } from "./types.ts";

export interface ReadBlocksOptions {
  readonly source: FileHandle;
  /** Where messages say a short read happened. */
  readonly sourceName: string;
  /** Blocks read at once (each holds one block in memory). */
  readonly concurrency: number;
  readonly counts: BackupCounts;
  /** Where block slots come from (and go back to, from later stages), and the threads that hash. */
  readonly workers: BlockWorkers;
  readonly signal?: AbortSignal;
}

/**
 * Blocks a backup reads at once for `slotCount` slots: half of them, less
 * two (4 at least, as with the 12 slots of 4 MiB blocks). With small
 * blocks, reads queued deep keep the I/O threads busy while this thread is
 * copying the base's rows (see BaseCopy) or claiming chunks; each holds a
 * slot, so the memory bound stays the slots'.
 */
export function readConcurrency(slotCount: number): number {
  return Math.max(4, Math.min(64, Math.floor(slotCount / 2) - 2));
}

/** Reads one block whole into `into` (or a new buffer); a short read is an error: the source shrank while it was read. */
export async function readBlock(source: FileHandle, block: BlockRef, sourceName: string, into?: Uint8Array): Promise<Uint8Array> {
  const data = into ?? Buffer.allocUnsafe(block.length);
  let done = 0;
  while (done < block.length) {
    const { bytesRead } = await source.read(data, done, block.length - done, block.offset + done);
    if (bytesRead === 0) throw new Error(`${sourceName}: ended at ${block.offset + done} while reading block ${block.index}; did the source shrink?`);
    done += bytesRead;
  }
  return data;
}

/**
 * Reads the blocks (several at once, on the I/O threads) into the workers'
 * slots and hashes each there (sha256, on every core); all-zero blocks come
 * out with a null hash and no data. Results come in the order they finish.
 */
export function readBlocks(refs: AsyncIterable<BlockRef>, options: ReadBlocksOptions): AsyncGenerator<ReadBlock> {
  const { workers } = options;
  return mapBounded(
    refs,
    async (block): Promise<ReadBlock> => {
      if (block.knownZero) return { ...block, hash: null, data: null };
      const data = await workers.take(block.length);
      try {
        await readBlock(options.source, block, options.sourceName, data);
        options.counts.bytesRead += data.length;
        const hash = await workers.hash(data);
        if (hash === null) workers.give(data);
        return { ...block, hash, data: hash === null ? null : data };
      } catch (error) {
        workers.give(data);
        throw error;
      }
    },
    { concurrency: options.concurrency, signal: options.signal },
  );
}
