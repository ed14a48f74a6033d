import { closeSync, fstatSync, openSync } from "node:fs";
import type { Output } from "../../cli/output.ts";
import { crashPoint } from "../../crash-point.ts";
import { ExitCode } from "../../errors.ts";
import { sizeOf } from "../../fs/device-size.ts";
import { abandonImageBackup, finishImageBackup, openImageBackup } from "../../image/backup-run.ts";
import { blockCount } from "../../image/stages/block-ranges.ts";
import { formatBytes } from "../../size.ts";
import imageBackup from "../../../pipelines/image-backup.ts";
import { ChangeMap } from "../change-map.ts";
import { withArchive, type OpenArchive } from "../open-archive.ts";
import { clockNow } from "../../clock.ts";
import { ARCHIVE_LABEL, nextSessionName, sessionDate } from "../sessions.ts";
import { openChangeSource, type ChangeSource } from "../sources/change-source.ts";
import type { VolumeSettings } from "../settings.ts";

/** What `send --json` reports for each volume. */
export interface SentSession {
  readonly volume: string;
  readonly session: string;
  readonly uid: string;
  /** How the changes were found: "extents", "thin_delta", "full read" (a first send reads the allocated ranges). */
  readonly method: string;
  readonly bytesRead: number;
  /** Bytes of new chunk objects written to the destination. */
  readonly bytesSent: number;
  readonly bytesDeduplicated: number;
}

/**
 * `blaine volume send [NAME…]`: a new session of each volume (all of them
 * by default). The volume is snapshotted; with a snapshot of the last
 * session to compare with, only the chunks the metadata says changed (and
 * those in the change map) are read; without one, everything is read and
 * compared with the last session's hashes. The session is an image version
 * from the last one (its full block list, new chunks stored once).
 */
export async function sendVolumes(settings: VolumeSettings, names: readonly string[], output: Output): Promise<ExitCode> {
  return withArchive(settings, { store: true, write: true }, async (open) => {
    // A volume named twice is sent once.
    const selected = names.length > 0 ? [...new Set(names)] : (await open.volumes.volumes()).map((volume) => volume.name);
    for (const name of selected) await open.requireVolume(name);
    const source = await openChangeSource(open.archive.source);
    const sent: SentSession[] = [];
    for (const name of selected) {
      const session = await sendVolume(open, source, name);
      output.say(`${name}: session ${session.session} (${session.method}): ${formatBytes(session.bytesRead)} read, ${formatBytes(session.bytesSent)} sent`);
      sent.push(session);
    }
    if (selected.length === 0) output.say("no volumes to send: blaine volume add NAME adds one");
    output.result({ volumes: sent });
    return ExitCode.ok;
  });
}

async function sendVolume(open: OpenArchive, source: ChangeSource, name: string): Promise<SentSession> {
  const { catalog, volumes, archive, store, chunkSize } = open;
  const volume = await open.requireVolume(name);
  const sessions = await open.sessions(name);
  const newest = sessions.at(-1);
  const base = sessions.filter((session) => session.status === "valid").at(-1);
  // The snapshot and change map count changes from `trackedSince`: they say what changed since the base only
  // when that is the base or older (every write after it moved extents or thin blocks, whatever came later).
  const tracked = volume.trackedSince !== null && base !== undefined && volume.trackedSince <= base.snapshot;
  const snapshot = await source.snapshot(name, chunkSize, tracked);
  try {
    let changed: { read: Set<number>; zero: Set<number> } | undefined;
    if (tracked && snapshot.changed) {
      const read = new Set(snapshot.changed.read);
      for (const index of ChangeMap.parse(volume.changeMap).indexes()) read.add(index);
      changed = { read, zero: snapshot.changed.zero };
    }
    const session = nextSessionName(newest?.snapshot, clockNow());
    const run = await openImageBackup(catalog, store, {
      source: snapshot.path,
      name,
      snapshot: session,
      from: base?.uid,
      changed: changed && clampToSize(changed, snapshot.path, chunkSize),
      blockSize: chunkSize,
      compression: archive.compression,
      labels: { [ARCHIVE_LABEL]: archive.uid },
      date: sessionDate(session),
    });
    let result;
    try {
      await imageBackup(run);
      crashPoint("volume-send-blocks-written");
      result = await finishImageBackup(run);
    } catch (error) {
      await abandonImageBackup(run).catch(() => {});
      throw error;
    }
    crashPoint("volume-send-session-valid");
    // Tracking restarts at the new session before its snapshot replaces the old: a kill in between leaves the
    // old snapshot, whose delta covers more than needed, never less.
    await volumes.setTracking(name, session, null);
    await snapshot.commit();
    return {
      volume: name,
      session,
      uid: result.uid,
      // No valid session to start from: the first send, or a full read when every earlier one is invalid or incomplete.
      method: base ? (changed ? snapshot.method : "full read") : sessions.length > 0 ? "full read" : "first send",
      bytesRead: result.bytesRead,
      bytesSent: result.bytesWritten,
      bytesDeduplicated: result.bytesDeduplicated,
    };
  } catch (error) {
    await snapshot.discard().catch(() => {});
    throw error;
  }
}

/** The changed chunks within the snapshot's size (a change map may hold chunks of a volume since shrunk). */
function clampToSize(changed: { read: Set<number>; zero: Set<number> }, path: string, chunkSize: number): { read: Set<number>; zero: Set<number> } {
  const count = blockCount(sizeOfPath(path), chunkSize);
  return { read: new Set([...changed.read].filter((index) => index < count)), zero: new Set([...changed.zero].filter((index) => index < count)) };
}

function sizeOfPath(path: string): number {
  const fd = openSync(path, "r");
  try {
    return sizeOf(fstatSync(fd));
  } finally {
    closeSync(fd);
  }
}
