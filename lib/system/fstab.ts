import { existsSync, readFileSync } from "node:fs";
import { resolve, sep } from "node:path";
import { listMounts, unescapeMountField } from "./fuse-mount.ts";

/**
 * The mountpoints /etc/fstab lists, to tell a disk's directory from the
 * empty directory under it when the disk is not mounted. `BLAINE_FSTAB`
 * names another file (tests).
 */
export function fstabFile(): string {
  return process.env.BLAINE_FSTAB || "/etc/fstab";
}

/** Mountpoints fstab lists, absolute (swap and `none` left out); none when there is no fstab. */
export function fstabMountpoints(file = fstabFile()): string[] {
  if (!existsSync(file)) return [];
  const mountpoints: string[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 2 || fields[0]!.startsWith("#")) continue;
    const mountpoint = unescapeMountField(fields[1]!);
    if (mountpoint.startsWith("/")) mountpoints.push(resolve(mountpoint));
  }
  return mountpoints;
}

/**
 * A mountpoint fstab lists that `path` is at or below and that is not
 * mounted now, if any: what would be written there goes into the empty
 * directory under the disk.
 */
export function unmountedFstabMountpoint(path: string, file = fstabFile()): string | undefined {
  const target = resolve(path);
  const listed = fstabMountpoints(file).filter((mountpoint) => mountpoint !== "/" && (target === mountpoint || target.startsWith(mountpoint + sep)));
  if (listed.length === 0) return undefined;
  const mounted = new Set(listMounts().map((mount) => mount.mountpoint));
  return listed.find((mountpoint) => !mounted.has(mountpoint));
}
