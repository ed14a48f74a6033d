import { dirname, resolve } from "node:path";
import { isAtOrUnder } from "../../catalog/path-order.ts";
import { readDiskLabel, type DiskLabel } from "../disk/disk-label.ts";
import { UsageError } from "../../errors.ts";

/**
 * Refuses a run whose source is an archive disk or lies on one: a disk
 * given for the run (--dest, `disks`), or any disk of this archive found
 * above the source. Archived into the archive, a disk's own files would be
 * archived again at every run (34 → 152 → 337 → … files). The other way
 * round, a disk lying inside a source, is left out by the walk (see TreeWalk).
 */
export function refuseSourcesOnDisks(sources: readonly string[], diskDirs: readonly string[], archiveId: string): void {
  for (const source of sources) {
    const absolute = resolve(source);
    for (const dir of diskDirs) {
      const root = resolve(dir);
      if (isAtOrUnder(absolute, root)) throw refusal(source, absolute === root, labelAt(root)?.label, root);
    }
    for (let dir = absolute; ; dir = dirname(dir)) {
      const label = labelAt(dir);
      if (label?.archiveId === archiveId) throw refusal(source, dir === absolute, label.label, dir);
      if (dir === "/") break;
    }
  }
}

function refusal(source: string, isTheDisk: boolean, label: string | undefined, root: string): UsageError {
  const disk = label === undefined ? `the archive disk directory ${root}` : `archive disk "${label}" (${root})`;
  return new UsageError(
    `source ${source} is ${isTheDisk ? "" : "inside "}${disk}: a disk is never archived into the archive (it would take its own files in again at every run); give sources outside the archive disks`,
  );
}

/** The label of a disk whose root is `dir`; undefined when it is none (or its label cannot be read: then it is no disk to compare). */
function labelAt(dir: string): DiskLabel | undefined {
  try {
    return readDiskLabel(dir);
  } catch {
    return undefined;
  }
}
