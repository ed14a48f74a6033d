/**
 * Repairing archived data from its PAR2 set in the disk's parity store:
 * on the disk itself (`blaine verify --repair`) or in a restored copy
 * (`blaine restore`, which leaves the disk alone). Either way the repaired
 * file must hash to the catalog's hash before it counts as repaired.
 */
import { existsSync, linkSync, lstatSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { hashAlgorithmOf, hashFile } from "../../hashing.ts";
import { crashPoint } from "../../crash-point.ts";
import { errorMessage } from "../../errors.ts";
import { fsPath, quotedPath } from "../../fs/byte-names.ts";
import { exactMtime, setTimes } from "../../fs/exact-mtime.ts";
import { DataTreeDirs } from "../../fs/data-tree-dirs.ts";
import { tempBeside } from "../../fs/dead-temps.ts";
import { repairRecoverySet } from "../../par2/repair.ts";
import type { MountedDisk } from "./mounted-disk.ts";
import { ParityStore } from "./parity-store.ts";

export interface ArchivedContent {
  readonly path: string;
  readonly hash: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly mtimeNsec?: number | null;
}

export interface ParityRepairOutcome {
  readonly ok: boolean;
  /** Why not, when not. */
  readonly message?: string;
}

/** Repairs `file` (a path holding `content`'s data, damaged) from the set on `disk`, then checks its hash. */
export async function repairFileFromParity(disk: MountedDisk, content: ArchivedContent, file: string, signal?: AbortSignal): Promise<ParityRepairOutcome> {
  const index = new ParityStore(disk.root).indexPath(content.hash);
  if (!existsSync(index)) return { ok: false, message: "it has no parity on this disk" };
  try {
    const result = await repairRecoverySet(index, { locate: () => file, signal });
    if (result.failure) return { ok: false, message: `parity cannot repair it: ${result.failure}` };
    const after = hashFile(file, hashAlgorithmOf(content.hash));
    if (after.hash !== content.hash) return { ok: false, message: `repaired from parity, but its hash is ${after.hash}` };
    setTimes(file, exactMtime(content.mtimeMs, content.mtimeNsec));
    return { ok: true };
  } catch (error) {
    signal?.throwIfAborted();
    return { ok: false, message: `parity repair failed: ${errorMessage(error)}` };
  }
}

/**
 * Repairs archived data on the disk. A repair writes a new file (temp and
 * rename), so other paths of the same content that were hardlinks of the
 * damaged file are linked to the repaired one too.
 */
export async function repairOnDisk(disk: MountedDisk, content: ArchivedContent, sameContentPaths: readonly string[], signal?: AbortSignal): Promise<ParityRepairOutcome> {
  const location = disk.layout.dataPath(content.path);
  // The repair writes beside the file: never below a symlink, which would take it off the disk.
  const dirs = new DataTreeDirs(disk.root);
  if (!dirs.parentsAreReal(location)) return { ok: false, message: "it is not on the disk: a symlink stands in its path" };
  let damagedInode: number | undefined;
  try {
    damagedInode = lstatSync(fsPath(location)).ino;
  } catch {
    damagedInode = undefined;
  }
  const outcome = await repairFileFromParity(disk, content, location, signal);
  if (!outcome.ok || damagedInode === undefined) return outcome;
  for (const other of sameContentPaths) {
    const otherLocation = disk.layout.dataPath(other);
    if (otherLocation === location) continue;
    try {
      if (!dirs.parentsAreReal(otherLocation) || lstatSync(fsPath(otherLocation)).ino !== damagedInode) continue;
      const temp = tempBeside(otherLocation, "relink-").path;
      // A file of this name can only be an earlier process' of the same PID: this one's to replace.
      rmSync(fsPath(temp), { force: true });
      linkSync(fsPath(location), fsPath(temp));
      crashPoint("parity-relink-before-rename");
      renameSync(fsPath(temp), fsPath(otherLocation));
    } catch {
      // Gone or not a link of the damaged file: verify reports it on its own.
    }
  }
  return outcome;
}

/**
 * `blaine restore`: a restored copy whose hash does not match is repaired in
 * place from the disk's parity (the disk is left as it is; `blaine verify
 * --repair` fixes it there). Returns the restore's view: whether it matches now.
 */
export async function repairRestoredCopy(
  disk: MountedDisk,
  file: ArchivedContent,
  target: string,
  read: { matches: boolean; hash: string },
  output?: { say(line: string): void },
  signal?: AbortSignal,
): Promise<{ matches: boolean; hash: string }> {
  const outcome = await repairFileFromParity(disk, file, target, signal);
  if (!outcome.ok) return read;
  output?.say(`REPAIRED ${quotedPath(file.path)} from its parity while restoring (the copy on disk "${disk.label.label}" is damaged: run blaine verify --repair)`);
  return { matches: true, hash: file.hash };
}
