import { utcStamp } from "../clock.ts";
import { UsageError } from "../errors.ts";
import type { VersionRow } from "../image/catalog/image-catalog.ts";

/**
 * Sessions: a volume's backups, named by their UTC date-time
 * `YYYYMMDD-HHMMSS` (sparsebak's form). UTC, so the names keep their order
 * when the local clock changes zone or DST; a session never takes a name at
 * or before its volume's newest one (a second send within the same second,
 * or a clock set back, takes the next free second after it). Each session is
 * an image version: `snapshot` holds its name, `date` the time it names.
 */
const NAME = /^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})$/;
/** The label marking a version as a session of a volume archive (its uid). */
export const ARCHIVE_LABEL = "volume-archive";

export function sessionName(date: Date): string {
  return utcStamp(date);
}

export function isSessionName(text: string): boolean {
  return NAME.test(text) && !Number.isNaN(sessionDate(text));
}

/** The time a session's name says (ms since the epoch, UTC). */
export function sessionDate(name: string): number {
  const match = NAME.exec(name);
  if (!match) return NaN;
  const [, y, mo, d, h, mi, s] = match.map(Number) as number[];
  const ms = Date.UTC(y!, mo! - 1, d!, h!, mi!, s!);
  return sessionName(new Date(ms)) === name ? ms : NaN;
}

/** The new session's name: now's, or the second after `newest` when now's would not sort after it. */
export function nextSessionName(newest: string | undefined, now: Date): string {
  const name = sessionName(now);
  if (newest === undefined || name > newest) return name;
  return sessionName(new Date(sessionDate(newest) + 1000));
}

/** What `--session` selects: one session, or an inclusive range `DT,DT`. */
export interface SessionSelection {
  readonly from: string;
  readonly to: string;
  readonly single: boolean;
}

export function parseSessionOption(text: string | undefined, option = "--session"): SessionSelection | undefined {
  if (text === undefined) return undefined;
  const parts = text.split(",").map((part) => part.trim());
  if (parts.length > 2 || parts.some((part) => !isSessionName(part))) {
    throw new UsageError(`${option}: "${text}" is not a session YYYYMMDD-HHMMSS or a range YYYYMMDD-HHMMSS,YYYYMMDD-HHMMSS (as list shows them)`);
  }
  const [from, to = from] = parts as [string, string?];
  if (to < from) throw new UsageError(`${option}: the range ${text} ends before it starts`);
  return { from, to, single: parts.length === 1 };
}

/** The sessions of a volume as list shows them: finished (valid or invalid), oldest first. */
export function sessionsOf(versions: readonly VersionRow[], archiveUid: string): VersionRow[] {
  return versions
    .filter((version) => version.labels[ARCHIVE_LABEL] === archiveUid && version.status !== "incomplete")
    .sort((a, b) => (a.snapshot < b.snapshot ? -1 : a.snapshot > b.snapshot ? 1 : 0));
}

/** The sessions a selection names: a single one must exist; a range takes those listed within it. */
export function selectSessions(sessions: readonly VersionRow[], selection: SessionSelection, volume: string): VersionRow[] {
  if (selection.single) {
    const found = sessions.find((session) => session.snapshot === selection.from);
    if (!found) throw new UsageError(`volume ${volume} has no session ${selection.from} (blaine volume list ${volume} shows them)`);
    return [found];
  }
  return sessions.filter((session) => session.snapshot >= selection.from && session.snapshot <= selection.to);
}
