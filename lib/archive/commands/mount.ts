import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import type { Settings } from "../settings.ts";
import { readDiskLabel, type DiskLabel } from "../disk/disk-label.ts";
import { diskLayout } from "../disk/layout.ts";
import { diskDirectoriesOf } from "../disk/mount-disks.ts";
import { mountForBrowsing } from "../disk/unlock.ts";
import { BlaineError, ExitCode, UsageError, errorMessage } from "../../errors.ts";
import { KeySource } from "../../secrets/key-source.ts";
import { CIPHER_NAMES } from "../../system/cipher-tool.ts";
import { mountAt, unmountFuse } from "../../system/fuse-mount.ts";
import { mountHolder, readMountRecords, removeMountRecord } from "../../system/mount-records.ts";
import type { Output } from "../../cli/output.ts";

export interface MountResult {
  readonly label: string;
  readonly dir: string;
  readonly mountpoint: string;
  readonly cipher: string;
  readonly readonly: true;
}

/**
 * `blaine mount LABEL MOUNTPOINT`: mounts an encrypted disk read-only for a
 * person to browse, until `blaine unmount MOUNTPOINT`. LABEL is a disk label
 * (found among --dest, or where the catalog last saw it) or the disk's
 * directory itself.
 */
export async function mountDiskForBrowsing(settings: Settings, labelOrDir: string, mountpoint: string, output: Output): Promise<MountResult> {
  if (!labelOrDir || !mountpoint) throw new UsageError("usage: blaine mount LABEL MOUNTPOINT");
  const { dir, label } = findDisk(settings, labelOrDir);
  const target = resolve(mountpoint);
  await mountForBrowsing(dir, label, target, new KeySource(settings.keyfiles));
  const result: MountResult = { label: label.label, dir, mountpoint: target, cipher: label.cipher!, readonly: true };
  output.say(`Disk "${label.label}" (${dir}) is mounted read-only at ${target}. When done: blaine unmount ${target}`);
  output.result(result);
  return result;
}

/**
 * `blaine unmount MOUNTPOINT`: takes down a mount made by `blaine mount`, a
 * stale one left by a killed command, or any other gocryptfs/securefs
 * mount; never the private mount of a command that is still running.
 */
export async function unmountBrowsing(mountpoint: string, output: Output): Promise<{ mountpoint: string }> {
  if (!mountpoint) throw new UsageError("usage: blaine unmount MOUNTPOINT");
  const target = resolve(mountpoint);
  const record = readMountRecords().find((candidate) => candidate.mountpoint === target);
  const mount = mountAt(target);
  if (!mount) {
    if (record) removeMountRecord(record);
    throw new UsageError(`${target} is not mounted`);
  }
  if (!CIPHER_NAMES.some((cipher) => mount.fsType === `fuse.${cipher}`)) {
    throw new UsageError(`${target} is a ${mount.fsType} mount, not an encrypted disk mounted by blaine mount`);
  }
  // A running command reads and writes through its private mount: taking it away would fail that command half way.
  if (record && record.purpose === "command" && mountHolder(record) !== "stale") {
    throw new UsageError(`${target} belongs to a running blaine command (pid ${record.pid}, disk "${record.label}"); it unmounts it itself when it ends`);
  }
  try {
    await unmountFuse(target);
  } catch (error) {
    throw new BlaineError(`${errorMessage(error)} (is a shell or program still using it?)`, ExitCode.failure);
  }
  if (record) removeMountRecord(record);
  output.say(`Unmounted ${target}.`);
  output.result({ mountpoint: target });
  return { mountpoint: target };
}

function findDisk(settings: Settings, labelOrDir: string): { dir: string; label: DiskLabel } {
  const asDir = resolve(labelOrDir);
  if (labelOrDir.includes("/") || existsSync(diskLayout(asDir).label)) {
    const label = readDiskLabel(asDir);
    if (!label) throw new UsageError(`${labelOrDir} is not an archive disk (no .blaine/disk.json)`);
    return { dir: asDir, label };
  }
  // Where --dest or the `disks` globs say disks are mounted, then where the catalog last saw this one.
  const candidates = diskDirectoriesOf(settings);
  if (settings.db && existsSync(settings.db)) {
    const catalog = ArchiveCatalog.open(settings.db, { readonly: true });
    try {
      candidates.push(...catalog.disks.lastMountPathsOf(labelOrDir));
    } finally {
      catalog.close();
    }
  }
  for (const dir of candidates) {
    const label = existsSync(dir) ? readDiskLabel(dir) : undefined;
    if (label?.label === labelOrDir) return { dir, label };
  }
  throw new UsageError(`disk "${labelOrDir}" is not connected: give its directory (blaine mount DIR MOUNTPOINT) or --dest DIR`);
}
