import { existsSync, statSync } from "node:fs";
import { isAbsolute } from "node:path";
import { UsageError } from "../../errors.ts";

/**
 * Where a volume's changes come from. Each kind of source snapshots a
 * volume and says which chunks changed since its previous snapshot from
 * metadata alone (extents that moved, thin_delta), or cannot (undefined:
 * the send reads everything and compares block hashes with the last
 * session).
 */
export interface VolumeSnapshot {
  /** The file or device the session is read from (the snapshot, frozen; or the live volume). */
  readonly path: string;
  /** Chunks changed since the previous snapshot; undefined when metadata cannot say. */
  readonly changed: { read: Set<number>; zero: Set<number> } | undefined;
  /** How the changes were found, for people and --json: "extents", "thin_delta", "full read". */
  readonly method: string;
  /** This snapshot becomes the volume's reference (the previous one goes): after the session is recorded. */
  commit(): Promise<void>;
  /** Removes it (the send failed). */
  discard(): Promise<void>;
}

export interface ChangeSource {
  /** The kind, for messages: "image files", "LVM thin". */
  readonly kind: string;
  /** Refuses a volume the source does not have (add). */
  check(name: string): Promise<void>;
  /**
   * Snapshots the volume now; with `delta`, also the chunks changed since
   * the previous snapshot (when there is one and metadata can say).
   */
  snapshot(name: string, chunkSize: number, delta: boolean): Promise<VolumeSnapshot>;
  /** The live volume, for diff. */
  livePath(name: string): Promise<string>;
  /** Removes the volume's snapshots (delete, arch-delete). */
  forget(name: string): Promise<void>;
}

/** `vg/pool` (an LVM thin pool) or an absolute directory of image files. */
export function sourceKind(source: string): "lvm" | "directory" {
  if (isAbsolute(source)) return "directory";
  if (/^[A-Za-z0-9+_.-]+\/[A-Za-z0-9+_.-]+$/.test(source)) return "lvm";
  throw new UsageError(`--source ${source}: give vg/pool (an LVM thin pool) or the absolute path of a directory holding image files`);
}

export function checkSource(source: string): void {
  if (sourceKind(source) === "directory" && (!existsSync(source) || !statSync(source).isDirectory())) {
    throw new UsageError(`--source ${source}: not a directory`);
  }
}

/** A volume's name: a plain name (a file in the source directory, or a logical volume). */
export function checkVolumeName(name: string): void {
  if (!/^[A-Za-z0-9+_][A-Za-z0-9+_.-]*$/.test(name)) throw new UsageError(`volume name "${name}": letters, digits, + _ . - only, not starting with . or -`);
}

export async function openChangeSource(source: string): Promise<ChangeSource> {
  if (sourceKind(source) === "lvm") return new (await import("./lvm-thin.ts")).LvmThinSource(source);
  return new (await import("./image-files.ts")).ImageFilesSource(source);
}

/** Byte ranges → the chunks they touch, within `size`. */
export function chunksOfRanges(ranges: readonly (readonly [number, number])[], size: number, chunkSize: number): Set<number> {
  const chunks = new Set<number>();
  for (const [start, end] of ranges) {
    const stop = Math.min(end, size);
    for (let index = Math.floor(start / chunkSize); index * chunkSize < stop; index++) chunks.add(index);
  }
  return chunks;
}
