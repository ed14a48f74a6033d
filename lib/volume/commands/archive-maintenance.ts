import type { Output } from "../../cli/output.ts";
import { crashPoint } from "../../crash-point.ts";
import { ExitCode } from "../../errors.ts";
import { cleanupWith, freeOrphans } from "../../image/commands/cleanup.ts";
import { formatBytes } from "../../size.ts";
import { ARCHIVE_DOC } from "../archive-settings.ts";
import { ARCHIVE_DELETING } from "../catalog/volume-catalog.ts";
import { confirm } from "../confirm.ts";
import { withArchive } from "../open-archive.ts";
import { removeSessions } from "../remove-sessions.ts";
import { ARCHIVE_LABEL } from "../sessions.ts";
import { openChangeSource } from "../sources/change-source.ts";
import type { VolumeSettings } from "../settings.ts";

const quiet: Output = { json: true, say: () => {}, result: () => {} };

/**
 * `blaine volume arch-deduplicate`: chunks are named by their content's
 * hash, so the destination holds each distinct chunk once by construction;
 * what can be there more than needed are chunks no session references
 * (from killed sends, or prunes of another catalog). Those are found by
 * comparing the destination's listing with the catalog and deleted.
 */
export async function deduplicateArchive(settings: VolumeSettings, output: Output): Promise<ExitCode> {
  return withArchive(settings, { store: true, write: true }, async (open) => {
    // On the store and catalog already open: an ssh destination keeps its one connection.
    const result = await cleanupWith(open.catalog, open.store, { graceMs: open.imageSettings.graceMs, full: true }, quiet);
    output.say(
      `every chunk is stored once (named by its content's hash); ${result.chunksFreed} chunk(s) no session referenced removed (${formatBytes(result.bytesFreed)})`,
    );
    output.result({ chunksFreed: result.chunksFreed, bytesFreed: result.bytesFreed, orphansFreed: result.orphansFreed });
    return ExitCode.ok;
  });
}

/**
 * `blaine volume arch-delete [-u]`: the whole archive — every session and
 * the chunks on the destination no image version of the same catalog
 * needs, the volumes' snapshots, the archive's settings in the catalog and
 * on the destination. Asks first unless -u. Resumable after a kill at any
 * step, in this order:
 *
 *   1. the catalog marks the archive as being deleted (every other command
 *      refuses it from then on, pointing here; the next arch-delete goes on
 *      without asking again);
 *   2. sessions removed (removeSessions: resumable itself), chunks no one
 *      needs deleted, the volumes' snapshots forgotten;
 *   3. the destination's document removed: while it is there, step 2 is
 *      (re)done; once it is gone the data is, and the destination may even
 *      hold a new archive, so a resumed delete touches it no more;
 *   4. the catalog's rows (the mark with them) in one transaction.
 */
export async function deleteArchive(settings: VolumeSettings, output: Output): Promise<ExitCode> {
  return withArchive(settings, { store: true, write: true, deleting: true }, async (open) => {
    const volumes = await open.volumes.volumes();
    const versions = (await open.catalog.versions()).filter((version) => version.labels[ARCHIVE_LABEL] === open.archive.uid);
    if (open.deleting) output.say(`finishing the arch-delete of the volume archive at ${open.imageSettings.store} that was interrupted`);
    else confirm(`Delete the volume archive at ${open.imageSettings.store}: ${volumes.length} volume(s), ${versions.length} session(s)?`, settings.unattended);
    await open.volumes.setSettings({ [ARCHIVE_DELETING]: String(Date.now()) });
    crashPoint("volume-arch-delete-noted");
    let removal = { sessionsRemoved: 0, chunksFreed: 0 };
    let leftover = 0;
    if ((await open.store.getMetaDoc(ARCHIVE_DOC)) !== undefined) {
      removal = await removeSessions(open.catalog, open.volumes, open.store, versions.map((version) => version.uid));
      // What is left on the destination that the catalog does not know (chunks of killed sends) goes too; chunks
      // image versions of the same catalog and store need stay (as do those a running image cleanup is deleting).
      const release = await open.catalog.sql.tryLock("cleanup");
      if (release) {
        try {
          leftover = (await freeOrphans(open.catalog, open.store)).chunksFreed;
        } finally {
          await release();
        }
      }
      const source = await openChangeSource(open.archive.source);
      for (const volume of volumes) await source.forget(volume.name).catch(() => {});
      await open.store.deleteMetaDoc(ARCHIVE_DOC);
      crashPoint("volume-arch-delete-doc-removed");
    }
    await open.volumes.forgetArchive();
    output.say(`deleted the volume archive: ${volumes.length} volume(s), ${removal.sessionsRemoved} session(s), ${removal.chunksFreed + leftover} chunk(s)`);
    output.result({ volumes: volumes.length, sessionsRemoved: removal.sessionsRemoved, chunksDeleted: removal.chunksFreed + leftover });
    return ExitCode.ok;
  });
}
