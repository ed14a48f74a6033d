import type { PlannedFile } from "../pipeline/types.ts";

export interface DedupOptions {
  /** Paths on the target disk holding this content now (DiskWriter.holdersOf). */
  readonly holdersOf: (hash: string, size: number) => readonly string[];
}

/**
 * Decides how each file's data reaches the disk: content the disk already
 * holds becomes a hardlink (nothing copied), symlinks are recreated, renames
 * stay renames, everything else is copied.
 */
export async function* dedup(items: AsyncIterable<PlannedFile>, options: DedupOptions): AsyncGenerator<PlannedFile> {
  for await (const item of items) {
    if (item.action === "rename") yield item;
    else if (item.kind === "symlink") yield { ...item, action: "symlink" };
    else if (item.hash && options.holdersOf(item.hash, item.size).length > 0) yield { ...item, action: "link" };
    else yield { ...item, action: "copy" };
  }
}
