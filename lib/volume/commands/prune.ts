import type { Output } from "../../cli/output.ts";
import { BlaineError, ExitCode, UsageError } from "../../errors.ts";
import type { VersionRow } from "../../image/catalog/image-catalog.ts";
import { formatBytes } from "../../size.ts";
import { withArchive } from "../open-archive.ts";
import { FREEING_DEFERRED, removeSessions } from "../remove-sessions.ts";
import { parseSessionOption, selectSessions } from "../sessions.ts";
import type { VolumeSettings } from "../settings.ts";

export interface PruneRequest {
  readonly names: readonly string[];
  /** `--session DT` or `DT,DT`. */
  readonly session: string | undefined;
  /** `--all-before`: every session before --session DT. */
  readonly allBefore: boolean;
}

/**
 * `blaine volume prune [NAME…] --session DT[,DT] | --all-before --session
 * DT`: removes sessions. Each session holds its full block list, so the
 * next one already has what it needs: nothing is merged, no chunk read or
 * rewritten; chunks no session references any more are deleted. The newest
 * session of a volume stays (the next send builds on it).
 */
export async function pruneVolumes(settings: VolumeSettings, request: PruneRequest, output: Output): Promise<ExitCode> {
  const selection = parseSessionOption(request.session);
  if (!selection) throw new UsageError("usage: blaine volume prune [NAME…] --session YYYYMMDD-HHMMSS[,YYYYMMDD-HHMMSS] | --all-before --session YYYYMMDD-HHMMSS");
  if (request.allBefore && !selection.single) throw new UsageError(`--all-before takes one --session, not the range ${request.session}`);
  return withArchive(settings, { store: true, write: true }, async (open) => {
    const names = request.names.length > 0 ? request.names : (await open.volumes.volumes()).map((volume) => volume.name);
    const chosen: { volume: string; sessions: VersionRow[] }[] = [];
    for (const name of names) {
      await open.requireVolume(name);
      const sessions = await open.sessions(name);
      const newest = sessions.at(-1);
      let picked: VersionRow[];
      if (request.allBefore) picked = sessions.filter((session) => session.snapshot < selection.from);
      // One session across all volumes: those that have it (a volume named must have it).
      else if (selection.single && request.names.length === 0) picked = sessions.filter((session) => session.snapshot === selection.from);
      else picked = selectSessions(sessions, selection, name);
      if (newest && picked.includes(newest)) {
        if (selection.single && !request.allBefore) {
          throw new BlaineError(`${newest.snapshot} is the newest session of ${name}; it cannot be pruned (the next send builds on it)`, ExitCode.usage);
        }
        output.say(`${name}: keeping ${newest.snapshot}, its newest session (the next send builds on it)`);
        picked = picked.filter((session) => session !== newest);
      }
      if (picked.length > 0) chosen.push({ volume: name, sessions: picked });
    }
    const uids = chosen.flatMap((entry) => entry.sessions.map((session) => session.uid));
    const removal = await removeSessions(open.catalog, open.volumes, open.store, uids);
    for (const entry of chosen) output.say(`${entry.volume}: pruned ${entry.sessions.length} session(s): ${entry.sessions.map((session) => session.snapshot).join(", ")}`);
    output.say(uids.length === 0 ? "nothing to prune" : `freed ${removal.chunksFreed} chunk(s), ${formatBytes(removal.bytesFreed)}`);
    if (removal.freeingDeferred) output.say(FREEING_DEFERRED);
    output.result({
      pruned: chosen.map((entry) => ({ volume: entry.volume, sessions: entry.sessions.map((session) => session.snapshot) })),
      chunksFreed: removal.chunksFreed,
      bytesFreed: removal.bytesFreed,
      freeingDeferred: removal.freeingDeferred,
    });
    return ExitCode.ok;
  });
}
