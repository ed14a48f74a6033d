import { mkdirSync, renameSync } from "node:fs";
import { dirname } from "node:path";
import { errnoCode } from "../errors.ts";
import { fsPath } from "./byte-names.ts";

/**
 * Moves a finished temp file to its place in the data tree (an atomic
 * rename on the same file system), making the directories above it when
 * they are missing. The rename is tried first: its directory nearly always
 * exists already, and a failed rename costs no more than the stat a check
 * would. Runs on the main thread or on a copy worker. Paths are catalog
 * strings (see byte-names.ts).
 */
export function placeFile(temp: string, target: string): void {
  try {
    renameSync(fsPath(temp), fsPath(target));
  } catch (error) {
    if (errnoCode(error) !== "ENOENT") throw error;
    // Either the directory is missing (made here, then tried again) or the
    // temp is gone (the second rename says so).
    mkdirSync(fsPath(dirname(target)), { recursive: true });
    renameSync(fsPath(temp), fsPath(target));
  }
}
