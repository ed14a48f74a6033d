import type { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import type { InodeRefresh } from "../catalog/inode-refresh.ts";
import { errorMessage } from "../../errors.ts";
import { hashAlgorithmOf, hashFile, hashLinkTarget, type HashAlgorithm } from "../../hashing.ts";
import { mapBounded } from "../../pipeline/bounded.ts";
import type { PlannedFile } from "./types.ts";
import type { RunReport } from "../run/report.ts";

export interface HashOptions {
  readonly catalog: ArchiveCatalog;
  readonly algorithm: HashAlgorithm;
  readonly report: RunReport;
  /** Dry runs read nothing, but files under a new inode (only their content tells whether they changed). */
  readonly dryRun?: boolean;
  /** Where the inodes of files found unchanged by their hash are recorded anew (not in dry runs). */
  readonly inodes?: InodeRefresh;
  /** A file that could not be read: its old name must not be taken for deleted. */
  readonly onNotStored?: (item: PlannedFile) => void;
  readonly signal?: AbortSignal;
}

/**
 * Below this, reading a file twice costs more than copying a duplicate that
 * the disk writer then turns into a hardlink anyway (small files' sizes
 * collide all the time, so nearly all would be read twice).
 */
const PREHASH_MIN_SIZE = 1024 * 1024;

/**
 * Hashes a file before it is copied only when the archive already holds
 * content of the same size, i.e. when it may be a duplicate or a rename by
 * content: then the planner can store a hardlink and nothing is copied.
 * Every other file is hashed by the copier in the same pass as the copy;
 * small duplicates are found when they are committed (see Planner.placeBatch).
 */
export async function* hashWhereDuplicatePossible(
  items: AsyncIterable<PlannedFile>,
  options: HashOptions,
): AsyncGenerator<PlannedFile> {
  const { catalog, algorithm, report } = options;
  // Sequential on purpose: only files of 1 MiB and more (and files under a
  // new inode) are read here, and those are throughput-bound; a plain loop
  // also keeps per-item overhead off the many small files that pass through.
  // Hardlinks of one new inode are read once.
  const inodeHashes = new Map<string, string>();
  for await (const item of items) {
    options.signal?.throwIfAborted();
    if (item.inodeChanged && item.previous) {
      const checked = sameContent(item, item.previous.hash, inodeHashes, options);
      if (checked === true) continue;
      if (checked !== undefined) {
        report.planned(item.size);
        yield checked;
      }
    } else if (item.hash) yield item;
    else if (item.kind === "symlink") yield { ...item, hash: hashLinkTarget(algorithm, item.linkTarget ?? "") };
    else if (options.dryRun || item.size < PREHASH_MIN_SIZE || !catalog.files.anyOfLargeSize(item.size)) yield item;
    else {
      try {
        const { hash, size } = hashFile(item.path, algorithm);
        // A size that differs from the walk means the file is changing: let the copier deal with it.
        yield size === item.size ? { ...item, hash } : item;
      } catch (error) {
        options.onNotStored?.(item);
        report.error(item.path, errorMessage(error));
        report.counts.skipped++;
      }
    }
  }
  options.inodes?.flush();
}

/**
 * A file whose path, size, mtime and mode are as archived but whose inode is
 * new: read (even in a dry run: only its content can tell) and compared with
 * the archived hash. True when unchanged (counted so, its inode recorded);
 * else the file as modified, with its hash; undefined when it cannot be read
 * (reported).
 */
function sameContent(item: PlannedFile, archivedHash: string, inodeHashes: Map<string, string>, options: HashOptions): true | PlannedFile | undefined {
  const { report } = options;
  const algorithm = hashAlgorithmOf(archivedHash);
  const inode = `${item.dev}:${item.ino}`;
  let hash = item.kind === "symlink" ? hashLinkTarget(algorithm, item.linkTarget ?? "") : inodeHashes.get(inode);
  try {
    if (hash === undefined) {
      const read = hashFile(item.path, algorithm);
      // A size that differs from the walk means the file is changing: the copier deals with it.
      if (read.size !== item.size) return { ...item, inodeChanged: false };
      hash = read.hash;
    }
  } catch (error) {
    options.onNotStored?.(item);
    report.error(item.path, errorMessage(error));
    report.counts.skipped++;
    return undefined;
  }
  if (item.kind === "file" && item.nlink > 1) inodeHashes.set(inode, hash);
  if (hash !== archivedHash) return { ...item, inodeChanged: false, hash: algorithm === options.algorithm ? hash : undefined };
  report.counts.unchanged++;
  options.inodes?.note(item.path, item.dev, item.ino);
  return true;
}

export interface HashEachOptions {
  readonly algorithm: HashAlgorithm;
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
  readonly onError?: (path: string, message: string) => void;
}

/** Hashes every file (symlinks: their target text), for pipelines that only take inventory. */
export async function* hashEach<T extends { path: string; kind: "file" | "symlink"; linkTarget: string | null }>(
  items: AsyncIterable<T>,
  options: HashEachOptions,
): AsyncGenerator<T & { hash: string }> {
  const work = async (item: T): Promise<(T & { hash: string }) | undefined> => {
    try {
      const hash = item.kind === "symlink" ? hashLinkTarget(options.algorithm, item.linkTarget ?? "") : hashFile(item.path, options.algorithm).hash;
      return { ...item, hash };
    } catch (error) {
      options.onError?.(item.path, errorMessage(error));
      return undefined;
    }
  };
  for await (const item of mapBounded(items, work, { concurrency: options.concurrency ?? 4, signal: options.signal })) {
    if (item) yield item;
  }
}
