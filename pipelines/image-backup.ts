/**
 * The default block-image backup pipeline (`blaine image backup`):
 * blocks to read → read + sha256 → dedup → zstd → store → version writer.
 * Composition only; every stage is in lib/image/stages/.
 */
import type { ImageBackupRun } from "../lib/image/backup-run.ts";
import { dedupBlocks } from "../lib/image/stages/dedup-blocks.ts";
import { encodeChunks } from "../lib/image/stages/encode-chunks.ts";
import { readBlocks, readConcurrency } from "../lib/image/stages/read-blocks.ts";
import { storeChunks } from "../lib/image/stages/store-chunks.ts";
import { writeVersionBlocks } from "../lib/image/stages/version-writer.ts";

export default async function imageBackup(run: ImageBackupRun, signal?: AbortSignal): Promise<void> {
  // Blocks live in the run's worker slots from read to store: at most 96 MiB in memory (12 blocks of 4 MiB), whatever the image.
  const { workers } = run;
  const concurrency = readConcurrency(workers.slotCount);
  const read = readBlocks(run.refs(), { source: run.source, sourceName: run.sourceName, concurrency, counts: run.counts, workers, signal });
  const planned = dedupBlocks(read, { catalog: run.catalog, uid: run.uid, baseHashes: run.baseHashes, hasBase: run.base !== undefined, seen: run.seen, counts: run.counts, workers, hints: run.hints });
  const encoded = encodeChunks(planned, { compression: run.compression, concurrency: 3, workers, signal });
  const stored = storeChunks(encoded, { store: run.store, counts: run.counts, concurrency: 3, workers, signal });
  await writeVersionBlocks(stored, { catalog: run.catalog, uid: run.uid, signal, store: run.store });
}
