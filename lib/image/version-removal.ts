import { BlaineError, ExitCode } from "../errors.ts";
import type { ImageCatalog } from "./catalog/image-catalog.ts";
import type { ChunkStore } from "./store/chunk-store.ts";
import { versionDocText } from "./version-doc.ts";

/** How long a settling waits for another process's settling of the same catalog. */
const DOCS_LOCK_WAIT_MS = 10 * 60_000;

/**
 * Keeps the store's version documents saying what the catalog says when
 * versions are removed. A removal merges each removed version's rows into
 * the versions inheriting from it and re-points them (one catalog
 * transaction, image-catalog.ts removeVersions), which notes their
 * documents for rewriting and the removed ones' for deleting. Settling
 * rewrites first, then deletes: at every moment each document names a
 * parent whose document exists, so a db-less restore of any of them works
 * whenever the process is killed; the notes are cleared only once done, so
 * the next removal or cleanup finishes a killed one's work.
 *
 * One process settles at a time (the catalog's "docs" lock): two writing
 * the same document could leave the older one last. A note made again
 * while this one settles (a removal beside it) has a new sequence number
 * and stays, for that removal's own settling.
 */
export async function settleVersionDocs(catalog: ImageCatalog, store: ChunkStore): Promise<void> {
  const release = await docsLock(catalog);
  try {
    const { rewrite, delete: deleted } = await catalog.docUpdates();
    for (const note of rewrite) {
      const version = await catalog.version(note.uid);
      // Removed since (its note is a delete now), or still being written with no document yet (its backup writes one
      // from the catalog when it finishes): nothing to rewrite.
      if (!version || (version.status === "incomplete" && (await store.getVersionDoc(note.uid)) === undefined)) continue;
      await store.putVersionDoc(note.uid, versionDocText(version, await catalog.ownBlocks(note.uid)));
    }
    await catalog.docUpdatesDone(rewrite);
    for (const note of deleted) await store.deleteVersionDoc(note.uid);
    await catalog.docUpdatesDone(deleted);
  } finally {
    await release();
  }
}

/** Removes one version (`blaine image rm`): its chunks become candidates with a grace period (see removeVersion); its document goes once those inheriting from it have theirs rewritten. */
export async function removeVersionAndDoc(catalog: ImageCatalog, store: ChunkStore, uid: string): Promise<void> {
  await settleVersionDocs(catalog, store);
  await catalog.removeVersion(uid);
  await settleVersionDocs(catalog, store);
}

async function docsLock(catalog: ImageCatalog): Promise<() => Promise<void>> {
  const deadline = Date.now() + DOCS_LOCK_WAIT_MS;
  for (;;) {
    const release = await catalog.sql.tryLock("docs");
    if (release) return release;
    if (Date.now() > deadline) {
      throw new BlaineError(`another process has been rewriting the store documents of ${catalog.name} for ${DOCS_LOCK_WAIT_MS / 60_000} minutes; try again later`, ExitCode.failure);
    }
    await Bun.sleep(50);
  }
}
