import { lstatSync, type Stats } from "node:fs";
import { errnoCode, errorMessage } from "../errors.ts";
import { byteLengthOfText, fsPath, listNames, readLinkText } from "../fs/byte-names.ts";
import { comparePaths } from "../catalog/path-order.ts";
import { isExcluded, type ExcludeRule } from "../glob.ts";
import type { FileEntry } from "../pipeline/types.ts";

export interface WalkOptions {
  readonly excludes?: readonly ExcludeRule[];
  /** Absolute paths never entered (the archive disks, the catalog). */
  readonly skipPaths?: ReadonlySet<string>;
  readonly signal?: AbortSignal;
  /**
   * An unreadable directory or file: reported, the walk goes on. `gone` when
   * it no longer exists (ENOENT); otherwise it is there but could not be read.
   */
  readonly onError?: (path: string, message: string, gone?: boolean) => void;
  /** Fifos, sockets and devices are not archived. */
  readonly onSkip?: (path: string, reason: string) => void;
}

/** A directory entry, lstat'ed when its directory was listed (or why that failed). */
interface Listed {
  readonly name: string;
  readonly stats?: Stats;
  readonly error?: string;
  readonly gone?: boolean;
}

interface Frame {
  readonly dir: string;
  readonly relative: string;
  readonly entries: Listed[];
  index: number;
}

/**
 * Walks the sources depth-first, yielding files and symlinks in the order
 * of their paths' bytes (the catalog's order: see CatalogLookahead), the
 * same on every machine. Memory is the listings along the current path,
 * whatever the tree's size; an explicit stack, so deep trees cannot
 * overflow the call stack.
 */
export async function* walk(sources: readonly string[], options: WalkOptions = {}): AsyncGenerator<FileEntry> {
  const excludes = options.excludes ?? [];
  for (const source of sources) {
    const root = lstatOrReport(source, options);
    if (!root) continue;
    if (!root.isDirectory()) {
      const entry = toEntry(source, root, options);
      if (entry) yield entry;
      continue;
    }
    const stack: Frame[] = [{ dir: source, relative: "", entries: listOrReport(source, options), index: 0 }];
    while (stack.length > 0) {
      options.signal?.throwIfAborted();
      const frame = stack[stack.length - 1];
      if (frame.index >= frame.entries.length) {
        stack.pop();
        continue;
      }
      const { name, stats, error, gone } = frame.entries[frame.index++];
      const path = frame.dir === "/" ? `/${name}` : `${frame.dir}/${name}`;
      const relative = frame.relative ? `${frame.relative}/${name}` : name;
      if (options.skipPaths?.has(path)) continue;
      if (!stats) {
        options.onError?.(path, error ?? "cannot be read", gone);
        continue;
      }
      const isDirectory = stats.isDirectory();
      if (isExcluded(excludes, path, relative, isDirectory)) continue;
      if (isDirectory) {
        stack.push({ dir: path, relative, entries: listOrReport(path, options), index: 0 });
        continue;
      }
      const entry = toEntry(path, stats, options);
      if (entry) yield entry;
    }
  }
}

function toEntry(path: string, stats: Stats, options: WalkOptions): FileEntry | undefined {
  let kind: FileEntry["kind"];
  let linkTarget: string | null = null;
  if (stats.isFile()) kind = "file";
  else if (stats.isSymbolicLink()) {
    kind = "symlink";
    try {
      linkTarget = readLinkText(path);
    } catch (error) {
      options.onError?.(path, errorMessage(error), errnoCode(error) === "ENOENT");
      return undefined;
    }
  } else {
    options.onSkip?.(path, `not archived: ${describeSpecial(stats)}`);
    return undefined;
  }
  return {
    path,
    kind,
    size: kind === "symlink" ? byteLengthOfText(linkTarget ?? "") : stats.size,
    mtimeMs: stats.mtimeMs,
    mode: stats.mode & 0o7777,
    dev: stats.dev,
    ino: stats.ino,
    nlink: stats.nlink,
    linkTarget,
  };
}

function describeSpecial(stats: Stats): string {
  if (stats.isFIFO()) return "a fifo";
  if (stats.isSocket()) return "a socket";
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return "a device";
  return "not a regular file";
}

function lstatOrReport(path: string, options: WalkOptions): Stats | undefined {
  try {
    return lstatSync(fsPath(path));
  } catch (error) {
    options.onError?.(path, errorMessage(error), errnoCode(error) === "ENOENT");
    return undefined;
  }
}

/**
 * A directory's entries, lstat'ed, in the order that makes the walk's paths
 * come out in byte order: a directory sorts as its name plus "/", so
 * "b.txt" comes before the contents of "b/", as in the catalog. Names that
 * are not UTF-8 are escaped strings (see byte-names.ts) and sort as such,
 * which is how the catalog orders them too.
 */
function listOrReport(dir: string, options: WalkOptions): Listed[] {
  let names: string[];
  try {
    names = listNames(dir);
  } catch (error) {
    options.onError?.(dir, errorMessage(error), errnoCode(error) === "ENOENT");
    return [];
  }
  const keyed = names.map((name) => {
    try {
      const stats = lstatSync(fsPath(dir === "/" ? `/${name}` : `${dir}/${name}`));
      return { key: stats.isDirectory() ? `${name}/` : name, listed: { name, stats } };
    } catch (error) {
      // Vanished or unreadable since readdir: reported when the walk gets there.
      return { key: name, listed: { name, error: errorMessage(error), gone: errnoCode(error) === "ENOENT" } };
    }
  });
  keyed.sort((a, b) => comparePaths(a.key, b.key));
  return keyed.map((entry) => entry.listed);
}

