import { UsageError } from "./errors.ts";

const UNITS: Record<string, number> = { "": 1, B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/**
 * Parses a SIZE: plain bytes or a number with K, M, G or T (powers of 1024),
 * optionally followed by "B" or "iB" ("10G", "1.5TiB", "4096").
 */
export function parseSize(text: string | number, option: string): number {
  if (typeof text === "number" && Number.isFinite(text) && text >= 0) return Math.floor(text);
  const match = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(String(text));
  if (!match) throw new UsageError(`${option}: "${text}" is not a size (bytes, or a number with K, M, G or T)`);
  return Math.floor(Number(match[1]) * UNITS[match[2].toUpperCase()]);
}

/** A size or a percentage of some whole ("1%", "20G"). */
export type SizeOrPercent = { readonly bytes: number } | { readonly percent: number };

export function parseSizeOrPercent(text: string | number, option: string): SizeOrPercent {
  const match = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(String(text));
  if (match) {
    const percent = Number(match[1]);
    if (percent > 100) throw new UsageError(`${option}: "${text}" is more than 100%`);
    return { percent };
  }
  return { bytes: parseSize(text, option) };
}

export function resolveSizeOrPercent(value: SizeOrPercent, whole: number): number {
  return "bytes" in value ? value.bytes : Math.ceil((whole * value.percent) / 100);
}

/** Human-readable bytes, powers of 1024, as the rest of the CLI speaks. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  const units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
