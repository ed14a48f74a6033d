import type { Output } from "../../cli/output.ts";
import { ExitCode } from "../../errors.ts";
import { formatBytes } from "../../size.ts";
import { confirm } from "../confirm.ts";
import { withArchive } from "../open-archive.ts";
import { FREEING_DEFERRED, removeSessions } from "../remove-sessions.ts";
import { ARCHIVE_LABEL } from "../sessions.ts";
import { openChangeSource } from "../sources/change-source.ts";
import type { VolumeSettings } from "../settings.ts";

/**
 * `blaine volume delete NAME [-u]`: the volume leaves the archive — its
 * sessions (and chunks nothing else references), its snapshots, its
 * configuration. Asks first unless -u/--unattended.
 */
export async function deleteVolume(settings: VolumeSettings, name: string, output: Output): Promise<ExitCode> {
  return withArchive(settings, { store: true, write: true }, async (open) => {
    await open.requireVolume(name);
    const versions = (await open.catalog.versions(name)).filter((version) => version.labels[ARCHIVE_LABEL] === open.archive.uid);
    confirm(`Delete volume ${name} and its ${versions.length} session(s) from the archive?`, settings.unattended);
    const removal = await removeSessions(open.catalog, open.volumes, open.store, versions.map((version) => version.uid));
    await (await openChangeSource(open.archive.source)).forget(name).catch((error) => output.say(`warning: ${error instanceof Error ? error.message : String(error)}`));
    await open.volumes.removeVolume(name);
    output.say(`deleted volume ${name}: ${removal.sessionsRemoved} session(s), ${removal.chunksFreed} chunk(s) (${formatBytes(removal.bytesFreed)}) freed`);
    if (removal.freeingDeferred) output.say(FREEING_DEFERRED);
    output.result({ deleted: name, sessionsRemoved: removal.sessionsRemoved, chunksFreed: removal.chunksFreed, bytesFreed: removal.bytesFreed });
    return ExitCode.ok;
  });
}
