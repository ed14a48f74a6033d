import type { ExcludeRule } from "../glob.ts";
import type { FileEntry } from "../pipeline/types.ts";
import { RecordKind, walkTree, type WalkRecord } from "./walk-tree.ts";

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

/**
 * Walks the sources depth-first, yielding files and symlinks in the order
 * of their paths' bytes, the catalog's order (see walkTree).
 */
export async function* walk(sources: readonly string[], options: WalkOptions = {}): AsyncGenerator<FileEntry> {
  yield* walkInThread(sources, options);
}

async function* walkInThread(sources: readonly string[], options: WalkOptions): AsyncGenerator<FileEntry> {
  for (const record of walkTree(sources, options.excludes ?? [], options.skipPaths)) {
    options.signal?.throwIfAborted();
    const entry = deliver(record, options);
    if (entry) yield entry;
  }
}

/** A file or symlink record as its entry; an error or skip record reported (undefined). */
function deliver(record: WalkRecord, options: WalkOptions): FileEntry | undefined {
  switch (record[1]) {
    case RecordKind.file:
    case RecordKind.symlink:
      return {
        path: record[0],
        kind: record[1] === RecordKind.file ? "file" : "symlink",
        size: record[2],
        mtimeMs: record[3],
        mode: record[4],
        dev: record[5],
        ino: record[6],
        nlink: record[7],
        linkTarget: record[8] ?? null,
      };
    case RecordKind.error:
      options.onError?.(record[0], record[2], record[3]);
      return undefined;
    case RecordKind.skip:
      options.onSkip?.(record[0], record[2]);
      return undefined;
  }
}
