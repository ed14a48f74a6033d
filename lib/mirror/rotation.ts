import { UsageError } from "../errors.ts";

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

export function mirrorNow(env: Readonly<Record<string, string | undefined>> = process.env): Date {
  const text = env.BLAINE_NOW;
  if (!text) return new Date();
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw new UsageError(`BLAINE_NOW: "${text}" is not an ISO date-time (like 2026-01-31T12:00:00Z)`);
  return date;
}

export function snapshotName(key: string, date: Date): string {
  const pad = (value: number) => String(value).padStart(2, "0");
  const day = `${date.getUTCFullYear()}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}`;
  const time = `${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}`;
  return `${key}-${day}-${time}`;
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

export interface RotationPlan {
  /** The snapshot to take now, if the newest is older than the rotation period (or there is none). */
  readonly take?: string;
  /** The oldest snapshots beyond `stages`, counting the one taken now. */
  readonly drop: readonly string[];
}

/**
 * What one directory key's rotation does now: a new snapshot when the
 * newest is `rotateHours` old or more, then only the `stages` newest kept.
 */
export function planRotation(key: string, existing: readonly string[], now: Date, strategy: { readonly stages: number; readonly rotateHours: number }): RotationPlan {
  const mine = existing
    .map(parseSnapshotName)
    .filter((snapshot): snapshot is SnapshotName => snapshot?.key === key)
    .sort((a, b) => a.date.getTime() - b.date.getTime());
  const newest = mine.at(-1);
  const due = !newest || now.getTime() - newest.date.getTime() >= strategy.rotateHours * 3_600_000;
  const take = due ? snapshotName(key, now) : undefined;
  const names = mine.map((snapshot) => snapshot.name);
  if (take && !names.includes(take)) names.push(take);
  return { ...(take && !mine.some((snapshot) => snapshot.name === take) ? { take } : {}), drop: names.slice(0, Math.max(0, names.length - strategy.stages)) };
}
