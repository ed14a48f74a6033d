import { lstatSync, mkdirSync, unlinkSync, type Stats } from "node:fs";
import { errnoCode } from "../errors.ts";
import { fsPath } from "./byte-names.ts";

/**
 * The directories of an archive disk's data tree, resolved from the disk's
 * root one component at a time without following a symlink. The data tree
 * mirrors the sources, symlinks included, so a path's parent on the disk can
 * be an archived symlink (a source symlink since replaced by a directory):
 * a write through it would land wherever it points, outside the disk (or on
 * other archived data). Every write into the data tree goes below
 * directories checked here; a symlink in the way is replaced by a real
 * directory, a missing directory made.
 *
 * Directories found real are remembered until `forget()` (called after any
 * removal), so a batch of files in one directory costs one check. Checking
 * and then writing is not atomic against another process changing the disk
 * at the same moment; the catalog lock keeps other Blaine runs away, and
 * nothing else is meant to write there.
 *
 * Paths are catalog strings (see byte-names.ts), absolute, below the root.
 */
export class DataTreeDirs {
  readonly #prefix: string;
  /** Directories seen to be real, every one above them too (up to the root), since the last forget(). */
  readonly #real = new Set<string>();

  constructor(root: string) {
    this.#prefix = root.endsWith("/") ? root.slice(0, -1) : root;
  }

  /** Makes every directory between the root and `target` a real directory: missing ones made, a symlink in the way replaced. */
  makeParents(target: string): void {
    const parent = this.#parentOf(target);
    if (this.#real.has(parent)) return;
    let madeAbove = false;
    for (const dir of this.#dirsAbove(target)) {
      if (this.#real.has(dir)) continue;
      // Below a directory made just now there is nothing to look at.
      if (!madeAbove) {
        const stats = lstatOrNull(dir);
        if (stats?.isDirectory()) {
          this.#real.add(dir);
          continue;
        }
        if (stats && !stats.isSymbolicLink()) throw notADirectory(dir);
        if (stats) unlinkSync(fsPath(dir));
      }
      makeDirectory(dir);
      madeAbove = true;
      this.#real.add(dir);
    }
  }

  /** Whether every directory between the root and `target` is a real directory (nothing is made or replaced). */
  parentsAreReal(target: string): boolean {
    if (this.#real.has(this.#parentOf(target))) return true;
    for (const dir of this.#dirsAbove(target)) {
      if (this.#real.has(dir)) continue;
      if (!lstatOrNull(dir)?.isDirectory()) return false;
      this.#real.add(dir);
    }
    return true;
  }

  /** What the data tree holds at `target` (not followed), or null: nothing there, or a parent is not a real directory. */
  lstat(target: string): Stats | null {
    return this.parentsAreReal(target) ? lstatOrNull(target) : null;
  }

  /** Whether `target` holds an archived entry (a file or symlink: the data tree records no directories). */
  holdsEntry(target: string): boolean {
    const stats = this.lstat(target);
    return stats !== null && !stats.isDirectory();
  }

  /** Drops what was checked: call after removing anything from the tree. */
  forget(): void {
    this.#real.clear();
  }

  #parentOf(target: string): string {
    const slash = target.lastIndexOf("/");
    return slash <= 0 ? "/" : target.slice(0, slash);
  }

  /** The directories from just below the root down to `target`'s parent, in that order. */
  *#dirsAbove(target: string): Generator<string> {
    const prefix = this.#prefix;
    if (!target.startsWith(`${prefix}/`)) throw new Error(`${target} is not below the disk's root ${prefix}`);
    const names = target.slice(prefix.length + 1).split("/");
    let dir = prefix;
    for (let i = 0; i < names.length - 1; i++) {
      const name = names[i];
      if (name === "" || name === "." || name === "..") throw new Error(`${target} is not a plain path below the disk's root ${prefix}`);
      dir = `${dir}/${name}`;
      yield dir;
    }
  }
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(fsPath(path));
  } catch (error) {
    if (errnoCode(error) === "ENOENT" || errnoCode(error) === "ENOTDIR") return null;
    throw error;
  }
}

function makeDirectory(dir: string): void {
  try {
    mkdirSync(fsPath(dir));
  } catch (error) {
    if (errnoCode(error) !== "EEXIST" || !lstatOrNull(dir)?.isDirectory()) throw error;
  }
}

function notADirectory(dir: string): Error {
  return Object.assign(new Error(`${dir} on the disk is a file where the archive needs a directory`), { code: "ENOTDIR" });
}
