/**
 * The walk itself, synchronous and plain data in, plain data out: the walk
 * worker runs it (see walk-worker.ts), and `walk()` runs it on the main
 * thread when no worker can be started. One implementation, so the two
 * cannot drift apart in order, excludes or error reports.
 */
import { errnoCode, errorMessage } from "../errors.ts";
import { byteLengthOfText, listNames, readLinkText } from "../fs/byte-names.ts";
import { DirectoryStats, describeSpecialMode, isDirectoryMode, isFileMode, isSymlinkMode, lstatEntry, type EntryStat } from "../fs/entry-stat.ts";
import { comparePaths } from "../catalog/path-order.ts";
import { isExcluded, type ExcludeRule } from "../glob.ts";

/** What a record is: tuple slot 1. */
export const RecordKind = { file: 0, symlink: 1, error: 2, skip: 3 } as const;

/**
 * One thing the walk found, in walk order, as a tuple: the worker sends
 * thousands of them per message as JSON, and tuples parse far cheaper than
 * keyed objects. Files and symlinks become FileEntry values; errors and
 * skips become onError and onSkip calls, in the same stream so their order
 * relative to the entries is kept.
 */
export type WalkRecord =
  | [path: string, kind: typeof RecordKind.file, size: number, mtimeMs: number, mode: number, dev: number, ino: number, nlink: number]
  | [path: string, kind: typeof RecordKind.symlink, size: number, mtimeMs: number, mode: number, dev: number, ino: number, nlink: number, linkTarget: string]
  | [path: string, kind: typeof RecordKind.error, message: string, gone: boolean]
  | [path: string, kind: typeof RecordKind.skip, reason: string];

/** A directory entry, lstat'ed when its directory was listed (or why that failed). */
interface Listed {
  readonly name: string;
  readonly stats?: EntryStat;
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
 * of their paths' bytes (the catalog's order: see SeenPaths), the
 * same on every machine. Memory is the listings along the current path,
 * whatever the tree's size; an explicit stack, so deep trees cannot
 * overflow the call stack. Lazy: nothing is read ahead of what is taken.
 */
export function* walkTree(sources: readonly string[], excludes: readonly ExcludeRule[], skipPaths?: ReadonlySet<string>): Generator<WalkRecord, void, undefined> {
  for (const source of sources) {
    let root: EntryStat;
    try {
      root = lstatEntry(source);
    } catch (error) {
      yield failure(source, error);
      continue;
    }
    if (!isDirectoryMode(root.mode)) {
      yield recordOf(source, root);
      continue;
    }
    const stack: Frame[] = [];
    yield* enter(stack, source, "");
    while (stack.length > 0) {
      const frame = stack[stack.length - 1];
      if (frame.index >= frame.entries.length) {
        stack.pop();
        continue;
      }
      const { name, stats, error, gone } = frame.entries[frame.index++];
      const path = frame.dir === "/" ? `/${name}` : `${frame.dir}/${name}`;
      const relative = frame.relative ? `${frame.relative}/${name}` : name;
      if (skipPaths?.has(path)) continue;
      if (!stats) {
        yield [path, RecordKind.error, error ?? "cannot be read", gone ?? false];
        continue;
      }
      const isDirectory = isDirectoryMode(stats.mode);
      if (isExcluded(excludes, path, relative, isDirectory)) continue;
      if (isDirectory) yield* enter(stack, path, relative);
      else yield recordOf(path, stats);
    }
  }
}

/** Lists a directory onto the stack (an unreadable one is reported, and walked as empty). */
function* enter(stack: Frame[], dir: string, relative: string): Generator<WalkRecord, void, undefined> {
  let entries: Listed[] = [];
  try {
    entries = listSorted(dir);
  } catch (error) {
    yield failure(dir, error);
  }
  stack.push({ dir, relative, entries, index: 0 });
}

function failure(path: string, error: unknown): WalkRecord {
  return [path, RecordKind.error, errorMessage(error), errnoCode(error) === "ENOENT"];
}

function recordOf(path: string, stats: EntryStat): WalkRecord {
  const mode = stats.mode & 0o7777;
  if (isFileMode(stats.mode)) return [path, RecordKind.file, stats.size, stats.mtimeMs, mode, stats.dev, stats.ino, stats.nlink];
  if (isSymlinkMode(stats.mode)) {
    let linkTarget: string;
    try {
      linkTarget = readLinkText(path);
    } catch (error) {
      return failure(path, error);
    }
    return [path, RecordKind.symlink, byteLengthOfText(linkTarget), stats.mtimeMs, mode, stats.dev, stats.ino, stats.nlink, linkTarget];
  }
  return [path, RecordKind.skip, `not archived: ${describeSpecialMode(stats.mode)}`];
}

/**
 * A directory's entries, lstat'ed, in the order that makes the walk's paths
 * come out in byte order: a directory sorts as its name plus "/", so
 * "b.txt" comes before the contents of "b/", as in the catalog. Names that
 * are not UTF-8 are escaped strings (see byte-names.ts) and sort as such,
 * which is how the catalog orders them too. Throws when the directory
 * cannot be listed.
 */
function listSorted(dir: string): Listed[] {
  const names = listNames(dir);
  const directory = new DirectoryStats(dir);
  let keyed: { key: string; listed: Listed }[];
  try {
    keyed = names.map((name) => {
      try {
        const stats = directory.statEntry(name);
        return { key: isDirectoryMode(stats.mode) ? `${name}/` : name, listed: { name, stats } };
      } catch (error) {
        // Vanished or unreadable since readdir: reported when the walk gets there.
        return { key: name, listed: { name, error: errorMessage(error), gone: errnoCode(error) === "ENOENT" } };
      }
    });
  } finally {
    directory.close();
  }
  keyed.sort((a, b) => comparePaths(a.key, b.key));
  return keyed.map((entry) => entry.listed);
}
