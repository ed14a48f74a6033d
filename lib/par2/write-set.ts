/** Writes a built recovery set next to SET.par2, each file atomically (temp, fsync, rename, then the directory). */
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname, basename, join } from "node:path";
import { fsyncDirectory } from "../fs/atomic.ts";
import type { BuiltSet } from "./create.ts";

/** SET.par2 → SET (the base every file of the set starts with). */
export function setBase(setPath: string): string {
  return setPath.replace(/\.par2$/i, "");
}

export function writeChunksAtomic(path: string, chunks: readonly Uint8Array[], options: { sync?: boolean } = {}): void {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(temp, "w", 0o644);
  try {
    for (const chunk of chunks) {
      let offset = 0;
      while (offset < chunk.length) offset += writeSync(fd, chunk, offset, chunk.length - offset);
    }
    if (options.sync !== false) fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  closeSync(fd);
  renameSync(temp, path);
}

/**
 * Returns the paths written. Refuses to replace an existing set's files.
 * `sync: false` leaves durability to the caller (one syncfs for a batch of sets).
 */
export function writeRecoverySet(setPath: string, built: BuiltSet, options: { sync?: boolean } = {}): string[] {
  const base = setBase(setPath);
  const paths = built.files.map((file) => base + file.suffix);
  const existing = paths.find((path) => existsSync(path));
  if (existing) throw new Error(`${existing} already exists; remove the old recovery set first`);
  for (const [i, file] of built.files.entries()) writeChunksAtomic(paths[i], file.chunks, options);
  if (options.sync !== false) fsyncDirectory(dirname(setPath) || ".");
  return paths;
}
