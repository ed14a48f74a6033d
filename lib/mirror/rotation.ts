import { utcStamp } from "../clock.ts";

/**
 * Snapshot names and the rotation decision. A snapshot is named
 * `KEY-YYYYMMDD-HHMMSS` in UTC (names sort as times, and mean the same on
 * every machine that reads the NAS). BLAINE_NOW (an ISO date-time) sets
 * "now" for the decision and the names, so a test can advance the clock.
 */
export interface SnapshotName {
  readonly key: string;
  readonly name: string;
  readonly date: Date;
}

const NAME_PATTERN = /^(.+)-(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})$/;

export function snapshotName(key: string, date: Date): string {
  return `${key}-${utcStamp(date)}`;
}

/** A snapshot's key and date from its name, or undefined for any other name. */
export function parseSnapshotName(name: string): SnapshotName | undefined {
  const match = NAME_PATTERN.exec(name);
  if (!match) return undefined;
  const [, key, year, month, day, hours, minutes, seconds] = match;
  const date = new Date(Date.UTC(+year, +month - 1, +day, +hours, +minutes, +seconds));
  if (Number.isNaN(date.getTime()) || snapshotName(key, date) !== name) return undefined;
  return { key, name, date };
}

/** What the store remembers of one key between backups (lib/mirror/state.ts keeps it). */
export interface KeyState {
  /** When the backup whose content the live subvolume holds completed; absent once a copy into it has begun and until one completes. */
  readonly completed?: Date;
  /** Where the rotation period runs from: the last rotation, or the first completed backup before any. */
  readonly rotated?: Date;
}

export interface RotationPlan {
  /** The snapshot to take now, before the copy: the live subvolume, named by `completed`. */
  readonly take?: string;
  /** Why the live subvolume is not snapshotted: never backed up (`first`), or a copy into it did not complete (`incomplete`) while a rotation is due. */
  readonly skipped?: "first" | "incomplete";
  /** The oldest snapshots beyond `stages`, counting the one taken now. */
  readonly drop: readonly string[];
  /** Where the rotation period runs from after this rotation (the `rotated` to keep); absent before any backup completed. */
  readonly since?: Date;
}

/**
 * What one directory key's rotation does now, BEFORE the new copy (as
 * mnemosyne: the snapshot keeps the past state the copy is about to
 * overwrite, so `stages` snapshots are `stages` past states).
 *
 * - The snapshot is named by the time of the backup whose content it
 *   holds (`state.completed`), not by now: `restore --from KEY-DATE`
 *   means "as it was at DATE".
 * - A live subvolume with no completed backup is not snapshotted: before
 *   the first one there is nothing to keep, and after a copy that failed
 *   or was killed it is half old, half new, no point in time. The period
 *   is left running, so the next run after a completed copy takes it.
 * - "Due" is mnemosyne's "the last rotation is older than `rotate` hours":
 *   counted from when the last rotation happened (`state.rotated`), not
 *   from the newest snapshot's name, which is the earlier time of its
 *   content (counting from it would rotate one backup interval early each
 *   period). Before the first rotation it counts from the first completed
 *   backup, where mnemosyne took its first (empty) snapshot; for a store
 *   written before the state file, from the newest snapshot.
 */
export function planRotation(key: string, existing: readonly string[], now: Date, state: KeyState, strategy: { readonly stages: number; readonly rotateHours: number }): RotationPlan {
  const mine = existing
    .map(parseSnapshotName)
    .filter((snapshot): snapshot is SnapshotName => snapshot?.key === key)
    .sort((a, b) => a.date.getTime() - b.date.getTime());
  const names = mine.map((snapshot) => snapshot.name);
  const beyondStages = () => names.slice(0, Math.max(0, names.length - strategy.stages));
  const since = state.rotated ?? mine.at(-1)?.date ?? state.completed;
  if (!since) return { drop: beyondStages(), skipped: "first" };
  const due = now.getTime() - since.getTime() >= strategy.rotateHours * 3_600_000;
  if (!due) return { drop: beyondStages(), since };
  if (!state.completed) return { drop: beyondStages(), skipped: "incomplete", since };
  const take = snapshotName(key, state.completed);
  // Taken already: a run killed between its snapshot and recording the rotation.
  if (names.includes(take)) return { drop: beyondStages(), since: now };
  names.push(take);
  return { take, drop: beyondStages(), since: now };
}
