import type { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import type { Content } from "../catalog/content-holders.ts";
import { hashFile, type HashAlgorithm } from "../../hashing.ts";
import type { PlannedFile } from "./types.ts";

export interface DedupOptions {
  /** Paths holding this content now ("alike": whose files show its mtime and mode too; ArchiveWriter.holdersOf). */
  readonly holdersOf: (content: Content, which: "alike" | "any") => readonly string[];
}

/**
 * Decides how each file's data reaches the disk: content the disk already
 * holds becomes a hardlink (nothing copied), symlinks are recreated, renames
 * stay renames, everything else is copied. A hardlink shares its inode's
 * mtime and mode, so only a holder with the same ones will do: the same
 * bytes under another mtime are copied, and the disk stays a plain mirror
 * (unless no copy fits: see linkIfHeld).
 */
export async function* dedup(items: AsyncIterable<PlannedFile>, options: DedupOptions): AsyncGenerator<PlannedFile> {
  for await (const item of items) {
    if (item.action === "rename") yield item;
    else if (item.kind === "symlink") yield { ...item, action: "symlink" };
    else if (item.hash && options.holdersOf(asContent(item, item.hash), "alike").length > 0) yield { ...item, action: "link" };
    else yield { ...item, action: "copy" };
  }
}

/** Sizes from here on are indexed in the host catalog (see ArchiveCatalog.hasContentOfSize). */
const LARGE_SIZE_INDEXED = 1024 * 1024;

export interface HeldContentOptions extends DedupOptions {
  readonly catalog: ArchiveCatalog;
  readonly algorithm: HashAlgorithm;
}

/**
 * The second look, for a file planned as a copy that found no room: it may
 * still be content the archive holds (a rename or a duplicate found by
 * content, whose hash was not read before because the file is small or the
 * pool's inodes are not stable), and a hardlink to that needs no space. It
 * costs one read of a file that could not be stored anyway; a large file is
 * read only when the archive holds content of its size (small sizes are not
 * indexed). Returns the file as a link, or undefined when it must be copied.
 */
export function linkIfHeld(item: PlannedFile, options: HeldContentOptions): PlannedFile | undefined {
  if (item.kind !== "file") return undefined;
  const { catalog } = options;
  if (item.size >= LARGE_SIZE_INDEXED ? !catalog.hasContentOfSize(item.size) : !catalog.hasFiles()) return undefined;
  let hash = item.hash;
  if (!hash) {
    try {
      const read = hashFile(item.path, options.algorithm);
      // A size that differs from the walk: the file is changing, and its content is not what the archive holds.
      if (read.size !== item.size) return undefined;
      hash = read.hash;
    } catch {
      // Unreadable now: it stays a copy that does not fit, reported as such.
      return undefined;
    }
  }
  // No room for a copy: a hardlink to any file of the content (its mtime or mode on the disk may then be
  // the other file's; the catalog has this file's, and restore sets them) rather than nothing stored.
  return options.holdersOf(asContent(item, hash), "any").length > 0 ? { ...item, hash, action: "link" } : undefined;
}

/** A planned file as the content its disk copy would show. */
function asContent(item: PlannedFile, hash: string): Content {
  return { hash, size: item.size, mtimeMs: item.mtimeMs, mtimeNsec: item.mtimeNsec ?? null, mode: item.mode };
}
