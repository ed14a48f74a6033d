import { lstatSync, readdirSync, readlinkSync, type Stats } from "node:fs";
import { errorMessage } from "../errors.ts";
import { isExcluded, type ExcludeRule } from "../glob.ts";
import type { FileEntry } from "../pipeline/types.ts";

export interface WalkOptions {
  readonly excludes?: readonly ExcludeRule[];
  /** Absolute paths never entered (the archive disks, the catalog). */
  readonly skipPaths?: ReadonlySet<string>;
  readonly signal?: AbortSignal;
  /** An unreadable directory or file: reported, the walk goes on. */
  readonly onError?: (path: string, message: string) => void;
  /** Fifos, sockets and devices are not archived. */
  readonly onSkip?: (path: string, reason: string) => void;
}

interface Frame {
  readonly dir: string;
  readonly relative: string;
  readonly names: string[];
  index: number;
}

/**
 * Walks the sources depth-first in name order, yielding files and symlinks.
 * Memory is the listings along the current path, whatever the tree's size;
 * an explicit stack, so deep trees cannot overflow the call stack.
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
    const stack: Frame[] = [{ dir: source, relative: "", names: listOrReport(source, options), index: 0 }];
    while (stack.length > 0) {
      options.signal?.throwIfAborted();
      const frame = stack[stack.length - 1];
      if (frame.index >= frame.names.length) {
        stack.pop();
        continue;
      }
      const name = frame.names[frame.index++];
      const path = frame.dir === "/" ? `/${name}` : `${frame.dir}/${name}`;
      const relative = frame.relative ? `${frame.relative}/${name}` : name;
      if (options.skipPaths?.has(path)) continue;
      const stats = lstatOrReport(path, options);
      if (!stats) continue;
      const isDirectory = stats.isDirectory();
      if (isExcluded(excludes, path, relative, isDirectory)) continue;
      if (isDirectory) {
        stack.push({ dir: path, relative, names: listOrReport(path, options), index: 0 });
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
      linkTarget = readlinkSync(path);
    } catch (error) {
      options.onError?.(path, errorMessage(error));
      return undefined;
    }
  } else {
    options.onSkip?.(path, `not archived: ${describeSpecial(stats)}`);
    return undefined;
  }
  return {
    path,
    kind,
    size: kind === "symlink" ? Buffer.byteLength(linkTarget ?? "") : stats.size,
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
    return lstatSync(path);
  } catch (error) {
    options.onError?.(path, errorMessage(error));
    return undefined;
  }
}

function listOrReport(dir: string, options: WalkOptions): string[] {
  try {
    // Sorted by bytes, not locale: the same order on every machine.
    return readdirSync(dir).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  } catch (error) {
    options.onError?.(dir, errorMessage(error));
    return [];
  }
}

