import { hostname } from "node:os";
import { batches } from "../../pipeline/bounded.ts";
import type { ImageCatalog } from "../catalog/image-catalog.ts";
import { hintsMissedChange } from "../hints.ts";
import type { BlockWorkers } from "../workers/block-workers.ts";
import type { BackupCounts, PlannedBlock, ReadBlock } from "./types.ts";

export interface DedupBlocksOptions {
  readonly catalog: ImageCatalog;
  /** The version being written (its claims on chunks are recorded under it). */
  readonly uid: string;
  /** The base version's hash per block index (--from), or undefined. */
  readonly baseHashes?: ReadonlyMap<number, string | null>;
  /** Whether a base's rows start the version's block list (then zeros over its data need a sparse row). */
  readonly hasBase: boolean;
  /** Hashes this backup already stores or references (filled here). */
  readonly seen: Set<string>;
  readonly counts: BackupCounts;
  /** Where the slots of blocks not passed on with their data go back. */
  readonly workers: BlockWorkers;
  /** The hints file, named when a block of the sanity check's sample (outside the hints) differs from the base's. */
  readonly hints?: string;
  /** Blocks claimed in one transaction (each holds its slot until passed on). @default claimBatch(workers.slotCount) */
  readonly batchSize?: number;
}

/**
 * Blocks per claim transaction: a quarter of the slots, 4 to 32 (82 claims of
 * 4 blocks were 20 ms of a 1 % incremental of a 4 GiB volume; 21 of 16 were
 * 25 ms of CPU under load, 11 of 32 were 15, and each waits its turn beside
 * the base's copy). A batch holds
 * its blocks' slots while it fills, and the read stage must still find free
 * ones to fill it: deadlock-free while the batch is well under the slots.
 */
export function claimBatch(slotCount: number): number {
  return Math.max(4, Math.min(32, Math.floor(slotCount / 4)));
}

/**
 * Decides each block's fate. Equal to the base's block: dropped (the version
 * inherits it). Zeros: dropped, or a sparse row over the base's data. A
 * chunk this backup or a finished version holds: referenced. Otherwise:
 * stored. Every chunk passed on is first claimed in the catalog, so a
 * cleanup beside this backup never deletes one of them. A block read only
 * as the hint sanity check's sample must equal the base's: one that does
 * not ends the backup (the hints missed a change).
 */
export async function* dedupBlocks(blocks: AsyncIterable<ReadBlock>, options: DedupBlocksOptions): AsyncGenerator<PlannedBlock> {
  const { catalog, baseHashes, seen, counts } = options;
  const owner = { host: hostname(), pid: process.pid };
  for await (const batch of batches(blocks, { size: options.batchSize ?? claimBatch(options.workers.slotCount) })) {
    const missed = batch.find((block) => block.outsideHints && (baseHashes?.get(block.index) ?? null) !== block.hash);
    if (missed) {
      for (const block of batch) options.workers.give(block.data);
      throw hintsMissedChange(options.hints, missed);
    }
    const wanted = batch.flatMap((block) =>
      block.hash && !seen.has(block.hash) && (!baseHashes || baseHashes.get(block.index) !== block.hash) ? [block.hash] : [],
    );
    const known = await claim(catalog, options.uid, wanted, owner);
    for (const block of batch) {
      const base = baseHashes?.get(block.index);
      if (baseHashes && (base ?? null) === block.hash) {
        options.workers.give(block.data);
        counts.bytesUnchanged += block.length;
        // Its chunk is the base's: deduplicated against it, as the same block without --from would be against the
        // store (zeros are sparse, counted there).
        if (block.hash !== null) counts.bytesDeduplicated += block.length;
        continue;
      }
      if (block.hash === null) {
        // With a base, a zero block over its data needs a row of its own; otherwise no row means zeros.
        if (options.hasBase) yield { ...block, action: "sparse" };
        continue;
      }
      if (seen.has(block.hash) || known.has(block.hash)) {
        counts.bytesDeduplicated += block.length;
        seen.add(block.hash);
        options.workers.give(block.data);
        yield { ...block, data: null, action: "reference" };
        continue;
      }
      seen.add(block.hash);
      yield { ...block, action: "store" };
    }
  }
}

/**
 * Claims chunks for a backup; those a cleanup is deleting right now are
 * waited for (the cleanup deletes their files, then says so) and claimed
 * afterwards, as new. A deleting row left by a cleanup that died is dropped
 * once no cleanup holds the cleanup lock. Returns the chunks the store holds.
 */
async function claim(catalog: ImageCatalog, uid: string, hashes: readonly string[], owner: { host: string; pid: number }): Promise<Set<string>> {
  let { known, deleting } = await catalog.claimHashes(uid, hashes, owner);
  for (let round = 1; deleting.size > 0; round++) {
    await Bun.sleep(50);
    if (round % 20 === 0) {
      const release = await catalog.sql.tryLock("cleanup");
      if (release) {
        try {
          await catalog.doneDeleting([...deleting]);
        } finally {
          await release();
        }
      }
    }
    const again = await catalog.claimHashes(uid, [...deleting], owner);
    for (const hash of again.known) known.add(hash);
    deleting = again.deleting;
  }
  return known;
}
