/**
 * The walk itself, synchronous and plain data in, plain data out: the walk
 * worker runs it (see walk-worker.ts), and `walk()` runs it on the main
 * thread when no worker can be started. One implementation, so the two
 * cannot drift apart in order, excludes or error reports.
 */
import { errnoCode, errorMessage } from "../../errors.ts";
import { byteLengthOfText, listNames, readLinkText } from "../../fs/byte-names.ts";
import { DirectoryStats, describeSpecialMode, isDirectoryMode, isFileMode, isSymlinkMode, lstatEntry, type EntryStat } from "../../fs/entry-stat.ts";
import { comparePaths } from "../../catalog/path-order.ts";
import { isExcluded, type ExcludeRule } from "../../glob.ts";
import { readDiskLabel } from "../disk/disk-label.ts";
import { BLAINE_DIR } from "../disk/layout.ts";

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
  | [path: string, kind: typeof RecordKind.file, size: number, mtimeMs: number, mode: number, dev: number, ino: number, nlink: number, mtimeNsec: number]
  | [path: string, kind: typeof RecordKind.symlink, size: number, mtimeMs: number, mode: number, dev: number, ino: number, nlink: number, mtimeNsec: number, linkTarget: string]
  | [path: string, kind: typeof RecordKind.error, message: string, gone: boolean]
  | [path: string, kind: typeof RecordKind.skip, reason: string];

/** A directory entry, lstat'ed when its directory was listed (or why that failed). */
interface Listed {
  readonly name: string;
  /** What it sorts by: its name, plus "/" for a directory. */
  readonly key: string;
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
 * Walks the sources depth-first, giving files and symlinks in the order
 * of their paths' bytes (the catalog's order: see SeenPaths), the
 * same on every machine. Memory is the listings along the current path,
 * whatever the tree's size; an explicit stack, so deep trees cannot
 * overflow the call stack. Lazy: nothing is read ahead of what is taken.
 *
 * Records are taken in chunks (`take`), not one by one through a generator:
 * the walk worker sends chunks anyway, and a plain loop costs the JIT a
 * fraction of what a generator's state machine does.
 */
export class TreeWalk {
  readonly #sources: readonly string[];
  readonly #excludes: readonly ExcludeRule[];
  readonly #skipPaths: ReadonlySet<string> | undefined;
  readonly #archiveId: string | undefined;
  #nextSource = 0;
  readonly #stack: Frame[] = [];

  /**
   * `archiveId` set (an archive run): archive disks met in the sources are
   * not archived, a disk of that archive not at all (its own data would go
   * into the archive again at every run), another archive's disk without
   * its Blaine directory (its data tree is ordinary data to this archive).
   */
  constructor(sources: readonly string[], excludes: readonly ExcludeRule[], skipPaths?: ReadonlySet<string>, archiveId?: string) {
    this.#sources = sources;
    this.#excludes = excludes;
    this.#skipPaths = skipPaths;
    this.#archiveId = archiveId;
  }

  /** Whether every record has been taken. */
  get done(): boolean {
    return this.#stack.length === 0 && this.#nextSource >= this.#sources.length;
  }

  /** The next records, at most `limit` of them (fewer only at the walk's end). */
  take(limit: number): WalkRecord[] {
    const records: WalkRecord[] = [];
    const stack = this.#stack;
    const excludes = this.#excludes;
    while (records.length < limit) {
      if (stack.length === 0) {
        if (this.#nextSource >= this.#sources.length) break;
        this.#startSource(this.#sources[this.#nextSource++], records);
        continue;
      }
      const frame = stack[stack.length - 1];
      if (frame.index >= frame.entries.length) {
        stack.pop();
        continue;
      }
      const { name, stats, error, gone } = frame.entries[frame.index++];
      const path = frame.dir === "/" ? `/${name}` : `${frame.dir}/${name}`;
      if (this.#skipPaths?.has(path)) continue;
      if (!stats) {
        records.push([path, RecordKind.error, error ?? "cannot be read", gone ?? false]);
        continue;
      }
      const isDirectory = isDirectoryMode(stats.mode);
      const relative = frame.relative ? `${frame.relative}/${name}` : name;
      if (excludes.length > 0 && isExcluded(excludes, path, relative, isDirectory)) continue;
      if (isDirectory) this.#enter(path, relative, records);
      else records.push(recordOf(path, stats));
    }
    return records;
  }

  #startSource(source: string, records: WalkRecord[]): void {
    let root: EntryStat;
    try {
      root = lstatEntry(source);
    } catch (error) {
      records.push(failure(source, error));
      return;
    }
    if (isDirectoryMode(root.mode)) this.#enter(source, "", records);
    else records.push(recordOf(source, root));
  }

  /** Lists a directory onto the stack (an unreadable one is reported, and walked as empty). */
  #enter(dir: string, relative: string, records: WalkRecord[]): void {
    let entries: Listed[] = [];
    try {
      entries = listSorted(dir);
    } catch (error) {
      records.push(failure(dir, error));
    }
    if (this.#archiveId !== undefined && entries.some((entry) => entry.key === BLAINE_DIR_KEY)) {
      const disk = diskAt(dir);
      if (disk?.archiveId === this.#archiveId) {
        records.push([dir, RecordKind.skip, `not archived: it is archive disk "${disk.label}" of this archive (a disk is never archived into its own archive)`]);
        return;
      }
      if (disk) {
        entries = entries.filter((entry) => entry.key !== BLAINE_DIR_KEY);
        records.push([`${dir === "/" ? "" : dir}/${BLAINE_DIR}`, RecordKind.skip, `not archived: the catalogs of disk "${disk.label}" of another archive (its data is archived)`]);
      }
    }
    this.#stack.push({ dir, relative, entries, index: 0 });
  }
}

/** How a listing sorts Blaine's directory (see Listed.key). */
const BLAINE_DIR_KEY = `${BLAINE_DIR}/`;

/** The disk whose root `dir` is, read from its label; one whose label cannot be read counts as another archive's. */
function diskAt(dir: string): { archiveId: string; label: string } | undefined {
  try {
    const label = readDiskLabel(dir);
    return label && { archiveId: label.archiveId, label: label.label };
  } catch {
    return { archiveId: "", label: `${dir} (its disk.json is unreadable)` };
  }
}

function failure(path: string, error: unknown): WalkRecord {
  return [path, RecordKind.error, errorMessage(error), errnoCode(error) === "ENOENT"];
}

function recordOf(path: string, stats: EntryStat): WalkRecord {
  const mode = stats.mode & 0o7777;
  if (isFileMode(stats.mode)) return [path, RecordKind.file, stats.size, stats.mtimeMs, mode, stats.dev, stats.ino, stats.nlink, stats.mtimeNsec];
  if (isSymlinkMode(stats.mode)) {
    let linkTarget: string;
    try {
      linkTarget = readLinkText(path);
    } catch (error) {
      return failure(path, error);
    }
    return [path, RecordKind.symlink, byteLengthOfText(linkTarget), stats.mtimeMs, mode, stats.dev, stats.ino, stats.nlink, stats.mtimeNsec, linkTarget];
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
  const listed: Listed[] = new Array(names.length);
  let beyondBmp = false;
  try {
    for (let i = 0; i < names.length; i++) {
      const name = names[i];
      if (!beyondBmp && SURROGATE.test(name)) beyondBmp = true;
      try {
        const stats = directory.statEntry(name);
        listed[i] = { name, key: isDirectoryMode(stats.mode) ? `${name}/` : name, stats };
      } catch (error) {
        // Vanished or unreadable since readdir: reported when the walk gets there.
        listed[i] = { name, key: name, error: errorMessage(error), gone: errnoCode(error) === "ENOENT" };
      }
    }
  } finally {
    directory.close();
  }
  // JavaScript's own string order is the byte order unless a name holds a
  // character above U+FFFF (a surrogate pair): then comparePaths is needed.
  listed.sort(beyondBmp ? (a, b) => comparePaths(a.key, b.key) : (a, b) => (a.key < b.key ? -1 : 1));
  return listed;
}

const SURROGATE = /[\uD800-\uDFFF]/;
