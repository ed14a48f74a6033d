import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { copyHostCatalogToDisk } from "../run/finish-run.ts";
import type { Settings } from "../settings.ts";
import { applyDeferred, type ApplyDeferredResult } from "../disk/apply-deferred.ts";
import { toRecord } from "../catalog/archive-catalog.ts";
import { DeferredQueue } from "../catalog/deferred-actions-table.ts";
import { readDiskLabel, type DiskLabel } from "../disk/disk-label.ts";
import { prepareDiskDirectory } from "../disk/prepare-disk.ts";
import { MountedDisk } from "../disk/mounted-disk.ts";
import { keyThatOpened, requireCipherTool } from "../disk/unlock.ts";
import { KeySource } from "../../secrets/key-source.ts";
import { BlaineError, ExitCode, UsageError, type ExitCode as ExitCodeValue } from "../../errors.ts";
import { describeLeftBehind } from "../disk/mount-disks.ts";
import { openArchive } from "./open-disks.ts";
import type { Output } from "../../cli/output.ts";

export interface CloneResult {
  readonly exitCode: ExitCodeValue;
  readonly label: string;
  readonly root: string;
  readonly copyId: string;
  /** Where the data came from: the mounted copies named (else the source files). */
  readonly from: readonly string[];
  /** Where the key came from that encrypted the new copy (never the key). */
  readonly key?: string;
  readonly fill: ApplyDeferredResult;
}

/**
 * `blaine disk clone LABEL DIR`: makes DIR a new physical copy (a twin) of
 * disk LABEL. The new copy is registered with one catch-up action per
 * archived path of the disk, in one transaction, then filled like any twin
 * catching up: from a mounted copy of the disk (--dest), else from the
 * source files, every file's hash checked. Killed half way, the same
 * command (or any command that mounts DIR) finishes it.
 */
export async function cloneDisk(
  settings: Settings,
  options: { readonly label: string; readonly dir: string; readonly encrypt?: string },
  output?: Output,
): Promise<CloneResult> {
  if (!options.label || !options.dir) throw new UsageError("usage: blaine disk clone LABEL DIR [--dest DIR-OF-A-MOUNTED-COPY]");
  if (options.encrypt !== undefined) requireCipherTool(options.encrypt, "--encrypt");
  const root = resolve(options.dir);
  if (existsSync(root) && !statSync(root).isDirectory()) throw new UsageError(`${options.dir} is not a directory`);
  mkdirSync(root, { recursive: true });
  const archive = await openArchive(settings, { write: true });
  try {
    const { catalog } = archive;
    const disk = catalog.disks.byLabel(options.label);
    if (!disk) throw new UsageError(`disk clone: the archive has no disk labelled "${options.label}"`);
    if (disk.state === "retired") throw new UsageError(`disk clone: disk "${options.label}" is retired`);
    if (archive.disks.some((mounted) => mounted.root === root)) throw new UsageError(`disk clone: ${options.dir} is also given as --dest`);

    const existing = readDiskLabel(root);
    // The same command again after an interrupted clone: finish filling it.
    const resuming = existing !== undefined && existing.archiveId === catalog.archiveId() && existing.diskId === disk.id;
    const registered = resuming && catalog.disks.diskOfCopy(existing.copyId) !== undefined;
    if (existing && !resuming) {
      throw new BlaineError(`${options.dir} already belongs to an archive (${existing.archiveId}, disk "${existing.label}"); refusing to clone onto it`, ExitCode.usage);
    }
    if (!existing && readdirSync(root).length > 0) throw new UsageError(`disk clone: ${options.dir} is not empty`);
    const label: DiskLabel = existing ?? {
      format: 1,
      archiveId: catalog.requireArchiveId(),
      diskId: disk.id,
      copyId: crypto.randomUUID(),
      label: disk.label,
      created: new Date().toISOString(),
      // A twin is encrypted on its own terms: its cipher and key need not be the original's.
      ...(options.encrypt ? { cipher: options.encrypt as DiskLabel["cipher"] } : {}),
    };
    const keys = new KeySource(settings.keyfiles);
    await prepareDiskDirectory(root, label, keys);
    const key = keyThatOpened(root);
    if (label.cipher) output?.say(`${root}: the new copy of disk "${disk.label}" is encrypted with ${label.cipher}, key from ${key ?? "the key given"}.`);
    if (!registered) catalog.transaction(() => {
      const now = Date.now();
      catalog.disks.insertCopy(label.copyId, disk.id, root, now);
      const queue = new DeferredQueue(catalog);
      for (const row of catalog.files.ofDisk(disk.id)) queue.queueForCopy(label.copyId, { op: row.kind === "symlink" ? "symlink" : "copy", path: row.path, record: toRecord(row) }, now);
    });

    const clone = await MountedDisk.open(catalog, root, `disk${archive.disks.length}`, { keys });
    try {
      const sources = archive.disks.filter((mounted) => mounted.label.diskId === disk.id);
      const fill = await applyDeferred(catalog, clone, { otherCopies: sources, preferCopies: true });
      copyHostCatalogToDisk(catalog, clone);
      const incomplete = fill.blocked.length > 0 || fill.stopped !== undefined || fill.remaining > 0;
      const result: CloneResult = {
        exitCode: incomplete ? ExitCode.incomplete : ExitCode.ok,
        label: disk.label,
        root,
        copyId: label.copyId,
        from: sources.length > 0 ? sources.map((mounted) => mounted.dir) : ["source files"],
        ...(key ? { key } : {}),
        fill,
      };
      if (output) {
        // The fill is the clone's own work, told as such (not as deferred actions applied to the disk).
        for (const line of describeLeftBehind(fill)) output.say(line);
        const named = `copy ${clone.copy.number} of disk "${disk.label}"`;
        output.say(
          incomplete
            ? `${root} is ${named} but not complete: ${fill.remaining} file(s) still to fill (listed above); mount a copy of "${disk.label}" with --dest and run the same command again.`
            : `Filled ${root} with ${fill.applied} file(s) from ${result.from.join(", ")}: it is now ${named}, complete.`,
        );
        output.result(result);
      }
      return result;
    } finally {
      catalog.detach(clone.alias);
    }
  } finally {
    archive.close();
  }
}
