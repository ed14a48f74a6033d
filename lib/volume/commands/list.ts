import type { Output } from "../../cli/output.ts";
import { ExitCode } from "../../errors.ts";
import { formatBytes } from "../../size.ts";
import { ChangeMap } from "../change-map.ts";
import { withArchive } from "../open-archive.ts";
import type { VolumeSettings } from "../settings.ts";

/**
 * `blaine volume list [NAME]`: the archive's volumes (sessions, the
 * newest, changes tracked since), or one volume's sessions — the names
 * `--session` takes, exactly as shown.
 */
export async function listVolumes(settings: VolumeSettings, name: string | undefined, output: Output): Promise<ExitCode> {
  return withArchive(settings, { store: false, write: false }, async (open) => {
    if (name !== undefined) {
      await open.requireVolume(name);
      const sessions = (await open.sessions(name)).map((session) => ({
        session: session.snapshot,
        uid: session.uid,
        size: session.size,
        status: session.status,
        bytesRead: session.bytesRead,
        bytesSent: session.bytesWritten,
      }));
      if (!output.json) {
        output.say(`volume ${name}: ${sessions.length} session(s)`);
        for (const session of sessions) output.say(`  ${session.session}  ${formatBytes(session.size).padStart(10)}  ${session.status}  ${session.uid}`);
      }
      output.result({ volume: name, sessions });
      return ExitCode.ok;
    }
    const volumes = [];
    for (const volume of await open.volumes.volumes()) {
      const sessions = await open.sessions(volume.name);
      volumes.push({
        name: volume.name,
        sessions: sessions.length,
        first: sessions[0]?.snapshot ?? null,
        last: sessions.at(-1)?.snapshot ?? null,
        trackedSince: volume.trackedSince,
        changedChunks: ChangeMap.parse(volume.changeMap).count(),
      });
    }
    if (!output.json) {
      output.say(`volume archive of ${open.archive.source} at ${open.imageSettings.store}`);
      for (const volume of volumes) {
        output.say(`  ${volume.name}: ${volume.sessions} session(s)${volume.last ? `, ${volume.first} … ${volume.last}` : ""}`);
      }
      if (volumes.length === 0) output.say("  no volumes: blaine volume add NAME adds one");
    }
    output.result({ source: open.archive.source, dest: open.archive.dest, subdir: open.archive.subdir, volumes });
    return ExitCode.ok;
  });
}
