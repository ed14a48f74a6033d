import { UsageError } from "../errors.ts";
import { formatCompression, parseCompression, type Compression } from "../image/store/chunk-format.ts";

/**
 * A volume archive's own settings, chosen at arch-init and kept twice: in
 * the catalog (volume_settings) and on the destination (the store's meta
 * document `volume-archive`), so the two can be checked against each other
 * and a destination says what it is.
 */
export interface ArchiveSettings {
  /** Names this archive: the catalog and the destination must agree on it. */
  readonly uid: string;
  /** `vg/pool` (an LVM thin pool) or an absolute directory holding image files. */
  readonly source: string;
  /** As given: `internal:/path`, `s3://bucket/prefix` or `ssh://user@host[:port]/path`. */
  readonly dest: string;
  /** A directory below DEST ("" for DEST itself). */
  readonly subdir: string;
  readonly compression: Compression;
  /** Chunks are 64 KiB × 2^chunkFactor (sparsebak's meaning). */
  readonly chunkFactor: number;
  /** ms since the epoch. */
  readonly created: number;
  /**
   * Whether the destination is encrypted (lib/image's encrypted store:
   * AES-256-GCM chunks and metadata under keyed names), and the key file
   * arch-init was given (its path only: the key is never stored).
   */
  readonly encrypted: boolean;
  readonly keyfile?: string;
}

export const ARCHIVE_DOC = "volume-archive";
export const DEFAULT_CHUNK_FACTOR = 1;
const MAX_CHUNK_FACTOR = 10;

export function chunkSizeOf(archive: Pick<ArchiveSettings, "chunkFactor">): number {
  return 64 * 1024 * 2 ** archive.chunkFactor;
}

/** `--chunk-factor N`: 0–10, chunks of 64 KiB to 64 MiB. */
export function parseChunkFactor(text: string | undefined): number {
  if (text === undefined) return DEFAULT_CHUNK_FACTOR;
  const factor = Number(text);
  if (!Number.isInteger(factor) || factor < 0 || factor > MAX_CHUNK_FACTOR) {
    throw new UsageError(`--chunk-factor: "${text}" is not a whole number from 0 to ${MAX_CHUNK_FACTOR} (chunks of 64 KiB × 2^N)`);
  }
  return factor;
}

/** `--compression zstd:N|none` (sparsebak's spelling; zstd alone is level 3). */
export function parseArchiveCompression(text: string | undefined): Compression {
  try {
    return parseCompression(text ?? "zstd:3");
  } catch {
    throw new UsageError(`--compression: "${text}" is not zstd:LEVEL (1–22) or none`);
  }
}

/** The settings as key/value pairs (the catalog's rows) and back. */
export function settingsRows(archive: ArchiveSettings): Record<string, string> {
  return {
    uid: archive.uid,
    source: archive.source,
    dest: archive.dest,
    subdir: archive.subdir,
    compression: formatCompression(archive.compression),
    "chunk-factor": String(archive.chunkFactor),
    created: String(archive.created),
    encrypted: archive.encrypted ? "true" : "false",
    ...(archive.keyfile ? { keyfile: archive.keyfile } : {}),
  };
}

export function settingsFromRows(rows: Readonly<Record<string, string>>, from: string): ArchiveSettings {
  for (const key of ["uid", "source", "dest", "compression", "chunk-factor", "created"]) {
    if (rows[key] === undefined) throw new UsageError(`${from}: the volume archive's setting "${key}" is missing`);
  }
  return {
    uid: rows.uid!,
    source: rows.source!,
    dest: rows.dest!,
    subdir: rows.subdir ?? "",
    compression: parseCompression(rows.compression!),
    chunkFactor: parseChunkFactor(rows["chunk-factor"]),
    created: Number(rows.created),
    encrypted: rows.encrypted === "true",
    ...(rows.keyfile ? { keyfile: rows.keyfile } : {}),
  };
}

/** The destination's copy: `{"format": "blaine-volume-archive", "formatVersion": 1, "settings": {…}}`. */
export function archiveDocText(archive: ArchiveSettings): string {
  return `${JSON.stringify({ format: "blaine-volume-archive", formatVersion: 1, settings: settingsRows(archive) }, null, 1)}\n`;
}

export function parseArchiveDoc(text: string, from: string): ArchiveSettings {
  let parsed: { format?: string; settings?: Record<string, string> };
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError(`${from}: the volume archive's settings document is damaged`);
  }
  if (parsed.format !== "blaine-volume-archive" || !parsed.settings) throw new UsageError(`${from}: not a volume archive's settings document`);
  return settingsFromRows(parsed.settings, from);
}
