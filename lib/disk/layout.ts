import { join } from "node:path";

/** Everything of Blaine's on an archive disk lives below this directory. */
export const BLAINE_DIR = ".blaine";

/** Where things sit on a mounted archive disk `root`. */
export function diskLayout(root: string) {
  const meta = join(root, BLAINE_DIR);
  return {
    root,
    meta,
    label: join(meta, "disk.json"),
    catalog: join(meta, "catalog.db"),
    hostCatalogCopy: join(meta, "host-catalog.db"),
    /** Temporary files: same file system as the data, so renames are atomic. */
    tmp: join(meta, "tmp"),
    /** Where an archived absolute path `path` is stored on this disk. */
    dataPath: (path: string) => join(root, path),
  } as const;
}
export type DiskLayout = ReturnType<typeof diskLayout>;
