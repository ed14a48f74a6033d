import type { Output } from "../../cli/output.ts";
import { ExitCode } from "../../errors.ts";
import { ChangeMap } from "../change-map.ts";
import { withArchive } from "../open-archive.ts";
import { openChangeSource } from "../sources/change-source.ts";
import type { VolumeSettings } from "../settings.ts";

/**
 * `blaine volume monitor`: for each volume with a snapshot, the chunks
 * changed since it are added to the volume's change map and a new
 * snapshot replaces it — so an aging snapshot stops holding on to space,
 * and the next send reads the map plus the latest delta. Sources without
 * change metadata (full read) have nothing to harvest.
 */
export async function monitorVolumes(settings: VolumeSettings, output: Output): Promise<ExitCode> {
  return withArchive(settings, { store: false, write: true }, async (open) => {
    const source = await openChangeSource(open.archive.source);
    const harvested: { volume: string; newChunks: number; changedChunks: number }[] = [];
    for (const volume of await open.volumes.volumes()) {
      if (volume.trackedSince === null) {
        output.say(`${volume.name}: nothing to harvest yet (its first send reads it whole)`);
        continue;
      }
      const snapshot = await source.snapshot(volume.name, open.chunkSize, true);
      if (!snapshot.changed) {
        await snapshot.discard();
        output.say(`${volume.name}: no change metadata here (sends read it whole and compare)`);
        continue;
      }
      const map = ChangeMap.parse(volume.changeMap);
      const before = map.count();
      map.addAll(snapshot.changed.read);
      map.addAll(snapshot.changed.zero);
      // The map first, then the new snapshot: a kill in between leaves the old snapshot, whose delta repeats these chunks.
      await open.volumes.setTracking(volume.name, volume.trackedSince, map.text());
      await snapshot.commit();
      harvested.push({ volume: volume.name, newChunks: map.count() - before, changedChunks: map.count() });
      output.say(`${volume.name}: ${map.count() - before} more chunk(s) changed, ${map.count()} since session ${volume.trackedSince}`);
    }
    output.result({ volumes: harvested });
    return ExitCode.ok;
  });
}
