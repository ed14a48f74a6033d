import type { Output } from "../../cli/output.ts";
import { ExitCode, UsageError } from "../../errors.ts";
import { deadTempsLine, restoreVersion } from "../../image/commands/restore.ts";
import { versionFromCatalog } from "../../image/commands/version-source.ts";
import type { VersionRow } from "../../image/catalog/image-catalog.ts";
import { formatBytes } from "../../size.ts";
import { withArchive, type OpenArchive } from "../open-archive.ts";
import { parseSessionOption, selectSessions } from "../sessions.ts";
import type { VolumeSettings } from "../settings.ts";

const quiet: Output = { json: true, say: () => {}, result: () => {} };

/** The session a command works on: `--session DT`, or the newest. */
export async function chooseSession(open: OpenArchive, name: string, sessionOption: string | undefined): Promise<VersionRow> {
  await open.requireVolume(name);
  const sessions = await open.sessions(name);
  const selection = parseSessionOption(sessionOption);
  if (selection && !selection.single) throw new UsageError(`--session ${sessionOption}: give one session here, not a range`);
  if (selection) return selectSessions(sessions, selection, name)[0]!;
  const newest = sessions.at(-1);
  if (!newest) throw new UsageError(`volume ${name} has no sessions yet: blaine volume send ${name} makes one`);
  return newest;
}

/**
 * `blaine volume receive NAME --save-to PATH [--session DT]`: the volume
 * as it was at the session (the newest by default), each chunk's hash
 * checked; damaged or missing chunks are listed and the rest restored
 * (exit 4). An existing file or a block device (an LV, a disk) is written
 * over only with --force, as `blaine image restore`.
 */
export async function receiveVolume(
  settings: VolumeSettings, request: { name: string; saveTo: string | undefined; session: string | undefined; force?: boolean }, output: Output,
): Promise<ExitCode> {
  if (!request.saveTo) throw new UsageError("usage: blaine volume receive NAME --save-to PATH [--session YYYYMMDD-HHMMSS] [--force]");
  const saveTo = request.saveTo;
  return withArchive(settings, { store: true, write: false }, async (open) => {
    const session = await chooseSession(open, request.name, request.session);
    const result = await restoreVersion(open.store, await versionFromCatalog(open.catalog, session.uid), { version: session.uid, target: saveTo, sparse: false, force: request.force ?? false }, quiet);
    // The restore speaks through `quiet` (receive says its own lines): its note of removed temps said here.
    if (result.deadTemps && result.deadTemps.removed > 0) output.say(deadTempsLine(saveTo, result.deadTemps));
    for (const range of result.damaged) {
      output.say(`damaged: bytes ${range.offset}–${range.offset + range.length} (chunk ${range.hash}): ${range.problem}`);
    }
    output.say(
      result.damaged.length > 0
        ? `received ${request.name} session ${session.snapshot} into ${saveTo} except ${result.damaged.length} chunk(s) listed above (left as zeros)`
        : `received ${request.name} session ${session.snapshot} into ${saveTo} (${formatBytes(session.size)})`,
    );
    output.result({ volume: request.name, session: session.snapshot, uid: session.uid, saveTo, bytesWritten: result.bytesWritten, damaged: result.damaged });
    return result.exitCode;
  });
}
