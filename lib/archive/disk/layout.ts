import { join } from "node:path";

/** Everything of Blaine's on an archive disk lives below this directory. */
export const BLAINE_DIR = ".blaine";

/** Where things sit on a mounted archive disk `root`. */
export function diskLayout(root: string) {
  const meta = join(root, BLAINE_DIR);
  const tmp = join(meta, "tmp");
  const rootPrefix = root.endsWith("/") ? root.slice(0, -1) : root;
  return {
    root,
    meta,
    label: join(meta, "disk.json"),
    catalog: join(meta, "catalog.db"),
    hostCatalogCopy: join(meta, "host-catalog.db"),
    /** Archived paths this copy does not hold intact, as verify found them (see damaged-copies.ts). */
    damaged: join(meta, "damaged.json"),
    /** Temporary files: same file system as the data, so renames are atomic. */
    tmp,
    /** A file in tmp (names are Blaine's own: no normalising needed). */
    tempPath: (name: string) => `${tmp}/${name}`,
    /**
     * Where an archived absolute path `path` is stored on this disk. Paths
     * from the walk are already normal: they are appended as they are
     * (path.join costs a file's worth of time over a 50 000-file run); any
     * other goes through join.
     */
    dataPath: (path: string) => (path.startsWith("/") && !path.includes("//") && !path.includes("/.") ? rootPrefix + path : join(root, path)),
  } as const;
}
export type DiskLayout = ReturnType<typeof diskLayout>;
