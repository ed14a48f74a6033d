import { crashPoint } from "../crash-point.ts";
import type { ImageCatalog } from "../image/catalog/image-catalog.ts";
import type { ChunkStore } from "../image/store/chunk-store.ts";
import { settleVersionDocs } from "../image/version-removal.ts";
import { PRUNE_PENDING, type VolumeCatalog } from "./catalog/volume-catalog.ts";

/**
 * Removing sessions (prune, delete, a killed send's leftover), so that a
 * kill at any moment leaves every other session whole and the next command
 * finishes the job:
 *
 *   1. the uids are noted in the catalog (volume_settings "prune-pending");
 *   2. one transaction removes their versions and block rows, each merged
 *      first into the session that inherits from it (its rows at the
 *      indexes that session has none of: no chunk read or rewritten);
 *      chunks no remaining version references become candidates;
 *   3. the destination's documents follow (version-removal.ts): those of
 *      the sessions merged into rewritten, then those of the removed
 *      deleted, so each document always names a parent that is there;
 *   4. those chunks are deleted (image cleanup's passes, no grace period:
 *      the archive's lock keeps sends out, and claims protect any backup;
 *      they are dated PRUNED, before any real time, so the pass takes them
 *      and no other candidate: a `blaine image rm`'s in the same catalog
 *      waits for its grace period, for a backup beside it),
 *      under the cleanup lock as `blaine image cleanup` deletes: the
 *      deleting list is its holder's (freeing another cleanup's list would
 *      let a backup write a chunk again that the other then deletes). When
 *      a cleanup holds it, the chunks stay candidates for the next prune
 *      or cleanup;
 *   5. the note is cleared.
 *
 * Each step is idempotent, so resuming repeats the steps from the first.
 */
export interface RemovalResult {
  readonly sessionsRemoved: number;
  readonly chunksFreed: number;
  readonly bytesFreed: number;
  /** A `blaine image cleanup` held the cleanup lock: the chunks no session needs are left for the next prune or cleanup. */
  readonly freeingDeferred: boolean;
}

/** Said when removeSessions found a `blaine image cleanup` of the same catalog deleting. */
export const FREEING_DEFERRED = "a blaine image cleanup of this catalog is running: the chunks no session needs any more are freed by the next prune or blaine image cleanup";

/** The date of the candidates a removal made: due at once, and older than every candidate `blaine image rm` dates with the clock. */
const PRUNED = 0;

export async function removeSessions(catalog: ImageCatalog, volumes: VolumeCatalog, store: ChunkStore, uids: readonly string[]): Promise<RemovalResult> {
  const pending = await pendingRemoval(volumes);
  const all = [...new Set([...pending, ...uids])];
  if (all.length === 0) return { sessionsRemoved: 0, chunksFreed: 0, bytesFreed: 0, freeingDeferred: false };
  await volumes.setSettings({ [PRUNE_PENDING]: JSON.stringify(all) });
  crashPoint("volume-prune-noted");
  const present = await catalog.versionUids();
  const removing = all.filter((uid) => present.has(uid));
  await settleVersionDocs(catalog, store);
  await catalog.removeVersions(removing, PRUNED);
  crashPoint("volume-prune-versions-removed");
  await settleVersionDocs(catalog, store);
  // Documents of sessions a killed send left without a catalog row (none inherit from them).
  for (const uid of all) if (!present.has(uid)) await store.deleteVersionDoc(uid);
  crashPoint("volume-prune-docs-removed");
  const release = await catalog.sql.tryLock("cleanup");
  let freed = { chunksFreed: 0, bytesFreed: 0 };
  try {
    // Loaded here: a send opens the archive this way too, and seldom has anything to remove.
    if (release) freed = await (await import("../image/commands/cleanup.ts")).freeGarbage(catalog, store, PRUNED);
  } finally {
    await release?.();
  }
  await volumes.deleteSetting(PRUNE_PENDING);
  return { sessionsRemoved: removing.length, ...freed, freeingDeferred: !release };
}

/** The removal a killed command left noted, if any. */
export async function pendingRemoval(volumes: VolumeCatalog): Promise<string[]> {
  const text = (await volumes.settings())[PRUNE_PENDING];
  return text ? (JSON.parse(text) as string[]) : [];
}
