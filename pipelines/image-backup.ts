/**
 * The default block-image backup pipeline (`blaine image backup`):
 * blocks to read → read + sha256 → dedup → zstd → store → version writer.
 * Composition only; every stage is in lib/image/stages/.
 */
import type { ImageBackupRun } from "../lib/image/backup-run.ts";
import { BlockBuffers } from "../lib/image/stages/block-buffers.ts";
import { dedupBlocks } from "../lib/image/stages/dedup-blocks.ts";
import { encodeChunks } from "../lib/image/stages/encode-chunks.ts";
import { readBlocks } from "../lib/image/stages/read-blocks.ts";
import { storeChunks } from "../lib/image/stages/store-chunks.ts";
import { writeVersionBlocks } from "../lib/image/stages/version-writer.ts";

export default async function imageBackup(run: ImageBackupRun, signal?: AbortSignal): Promise<void> {
  // Four blocks in flight per stage: both cores busy, and at 4 MiB blocks well under 300 MB in all.
  const buffers = new BlockBuffers(run.blockSize);
  const read = readBlocks(run.refs(), { source: run.source, sourceName: run.sourceName, concurrency: 4, counts: run.counts, buffers, signal });
  const planned = dedupBlocks(read, { catalog: run.catalog, uid: run.uid, baseHashes: run.baseHashes, hasBase: run.base !== undefined, seen: run.seen, counts: run.counts, buffers });
  const encoded = encodeChunks(planned, { compression: run.compression, concurrency: 4, buffers, signal });
  const stored = storeChunks(encoded, { store: run.store, counts: run.counts, concurrency: 4, signal });
  await writeVersionBlocks(stored, { catalog: run.catalog, uid: run.uid, signal });
}
