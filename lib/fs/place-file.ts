import { renameSync } from "node:fs";
import { fsPath } from "./byte-names.ts";
import type { DataTreeDirs } from "./data-tree-dirs.ts";

/**
 * Moves a finished temp file to its place in the data tree (an atomic
 * rename on the same file system). The directories above it are checked to
 * be real directories first, made when missing, a symlink in the way
 * replaced (see DataTreeDirs): the rename never lands outside the disk.
 * The check is remembered per directory, so a batch of files in one
 * directory pays for it once. Runs on the main thread or on a copy worker.
 * Paths are catalog strings (see byte-names.ts).
 */
export function placeFile(temp: string, target: string, dirs: DataTreeDirs): void {
  dirs.makeParents(target);
  renameSync(fsPath(temp), fsPath(target));
}
