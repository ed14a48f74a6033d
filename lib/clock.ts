import { UsageError } from "./errors.ts";

/**
 * The time the products name things by (volume sessions, mirror snapshots):
 * now, or BLAINE_NOW (an ISO date-time) so that tests can move the clock.
 */
export function clockNow(env: Readonly<Record<string, string | undefined>> = process.env): Date {
  const text = env.BLAINE_NOW;
  if (!text) return new Date();
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw new UsageError(`BLAINE_NOW: "${text}" is not an ISO date-time (like 2026-01-31T12:00:00Z)`);
  return date;
}

/** `YYYYMMDD-HHMMSS` in UTC: names that sort as their times whatever the local zone or DST. */
export function utcStamp(date: Date): string {
  const pad = (value: number) => String(value).padStart(2, "0");
  return `${date.getUTCFullYear()}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}-${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}`;
}
