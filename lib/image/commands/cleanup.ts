import { hostname } from "node:os";
import { crashPoint } from "../../crash-point.ts";
import { BlaineError, ExitCode } from "../../errors.ts";
import { isProcessAlive } from "../../fs/process-alive.ts";
import type { Output } from "../../cli/output.ts";
import { mapBounded } from "../../pipeline/bounded.ts";
import { formatBytes, formatDuration } from "../../size.ts";
import type { ImageCatalog } from "../catalog/image-catalog.ts";
import type { ImageSettings } from "../settings.ts";
import type { ChunkStore } from "../store/chunk-store.ts";
import { settleVersionDocs } from "../version-removal.ts";
import { openImageStore, withCatalog } from "./open-image.ts";

export interface CleanupResult {
  readonly chunksFreed: number;
  readonly bytesFreed: number;
  /** Of those, orphans (--full): chunks no catalog row ever referenced, from killed backups. */
  readonly orphansFreed: number;
  readonly inGrace: number;
  readonly tempsRemoved: number;
}

/** Chunks a pass takes at once: a few thousand rows per statement, and deletions spread over the I/O threads. */
const PASS = 5000;

/**
 * Deletes the chunks taken for deletion (already on the deleting list),
 * then clears them from it: a backup waiting for one writes it again.
 */
async function deleteTaken(catalog: ImageCatalog, store: ChunkStore, hashes: string[]): Promise<number> {
  let bytes = 0;
  async function* each() {
    yield* hashes;
  }
  for await (const size of mapBounded(each(), async (hash) => {
    const size = (await store.chunkSize(hash)) ?? 0;
    await store.deleteChunk(hash);
    crashPoint("image-chunk-deleted");
    return size;
  }, { concurrency: 8 })) bytes += size;
  await catalog.doneDeleting(hashes);
  return bytes;
}

/**
 * Frees what no version references: drops the claims of killed backups,
 * finishes the deletions a killed cleanup left, then deletes the candidates
 * that became candidates at or before `cutoff`, in passes. The caller holds
 * the cleanup lock. Also a volume prune's last step (cutoff: the date of its own candidates).
 */
export async function freeGarbage(catalog: ImageCatalog, store: ChunkStore, cutoff: number): Promise<{ chunksFreed: number; bytesFreed: number }> {
  let chunksFreed = 0;
  let bytesFreed = 0;
  // Claims of backups that were killed (their pid gone from this host) protect nothing any more.
  const here = hostname();
  for (const owner of await catalog.pendingOwners()) if (owner.host === here && !isProcessAlive(owner.pid)) await catalog.dropPending(owner);
  // Chunks a killed cleanup had taken but not finished deleting.
  const leftover = await catalog.leftoverDeleting();
  if (leftover.length > 0) {
    bytesFreed += await deleteTaken(catalog, store, leftover);
    chunksFreed += leftover.length;
  }
  for (;;) {
    const taken = await catalog.takeGarbage(cutoff, PASS);
    if (taken.length === 0) break;
    bytesFreed += await deleteTaken(catalog, store, taken);
    chunksFreed += taken.length;
  }
  return { chunksFreed, bytesFreed };
}

/**
 * Deletes the chunks the store holds that the catalog does not know (from
 * killed backups): no version references them, no running backup claimed
 * them, none is a deletion candidate in its grace period. The caller holds
 * the cleanup lock. Also what a volume archive's arch-delete leaves of its
 * destination: chunks image versions of the same catalog need stay.
 */
export async function freeOrphans(catalog: ImageCatalog, store: ChunkStore): Promise<{ chunksFreed: number; bytesFreed: number }> {
  let chunksFreed = 0;
  let bytesFreed = 0;
  for await (const page of store.listChunks()) {
    const orphans = await catalog.takeOrphans(page);
    if (orphans.length === 0) continue;
    bytesFreed += await deleteTaken(catalog, store, orphans);
    chunksFreed += orphans.length;
  }
  return { chunksFreed, bytesFreed };
}

/**
 * `blaine image cleanup [--full] [--grace DURATION]`: deletes chunks that
 * no version references and that became candidates longer ago than the
 * grace period; --full also compares the store's listing with the catalog
 * and deletes orphans. A backup running meanwhile keeps every chunk it
 * references (see ImageCatalog.writeBlocks).
 */
export async function cleanupImages(settings: ImageSettings, full: boolean, output: Output): Promise<CleanupResult> {
  const store = await openImageStore(settings, { create: false });
  return withCatalog(settings, false, (catalog) => cleanupWith(catalog, store, { graceMs: settings.graceMs, full }, output));
}

/**
 * The cleanup itself, on a catalog and store the caller has open (a volume
 * command keeps its one connection to an ssh destination): chunks past
 * their grace freed, with `full` also stale temps and orphans.
 */
export async function cleanupWith(catalog: ImageCatalog, store: ChunkStore, options: { readonly graceMs: number; readonly full: boolean }, output: Output): Promise<CleanupResult> {
  const { graceMs, full } = options;
  const cutoff = Date.now() - graceMs;
  let chunksFreed = 0;
  let bytesFreed = 0;
  let orphansFreed = 0;
  let tempsRemoved = 0;
  const release = await catalog.sql.tryLock("cleanup");
  if (!release) throw new BlaineError(`another blaine image cleanup is running on ${catalog.name}`, ExitCode.failure);
  try {
    // A killed removal's documents first: --full judges the store's documents by the catalog's versions.
    await settleVersionDocs(catalog, store);
    ({ chunksFreed, bytesFreed } = await freeGarbage(catalog, store, cutoff));
    if (full) {
      const known = await catalog.versionUids();
      const foreign = (await store.listVersionDocs()).filter((uid) => !known.has(uid));
      if (foreign.length > 0) {
        throw new BlaineError(
          `store ${store.name} holds versions the ${catalog.name} does not know (${foreign.slice(0, 3).join(", ")}${foreign.length > 3 ? ", …" : ""}); ` +
            "cleanup --full would delete their chunks: blaine image import UID each of them first, or use the catalog they belong to",
          ExitCode.usage,
        );
      }
      tempsRemoved = await store.removeStaleTemps(graceMs);
      const orphans = await freeOrphans(catalog, store);
      bytesFreed += orphans.bytesFreed;
      chunksFreed += orphans.chunksFreed;
      orphansFreed += orphans.chunksFreed;
    }
  } finally {
    await release();
  }
  const grace = await catalog.candidatesInGrace(cutoff);
  if (chunksFreed > 0) output.say(`freed ${chunksFreed} chunk(s), ${formatBytes(bytesFreed)}${orphansFreed > 0 ? ` (${orphansFreed} orphan(s))` : ""}`);
  if (grace.count > 0) {
    const due = (grace.oldestSince as number) + graceMs - Date.now();
    output.say(
      `${grace.count} chunk(s) of removed versions are still in their grace period (${formatDuration(graceMs)}); the first can be freed in ${formatDuration(Math.max(0, due))} (--grace to shorten it)`,
    );
  } else if (chunksFreed === 0) {
    output.say("nothing to free: every chunk is referenced by a version");
  }
  const result = { chunksFreed, bytesFreed, orphansFreed, inGrace: grace.count, tempsRemoved };
  output.result(result);
  return result;
}
