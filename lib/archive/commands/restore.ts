import { chmodSync, existsSync, linkSync, lstatSync, mkdirSync, renameSync, rmSync, symlinkSync, type Stats } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { HostFileRow } from "../catalog/records.ts";
import { selectFiles } from "../catalog/select-files.ts";
import type { Settings } from "../settings.ts";
import { copyWithHash } from "../../copy/builtin-copy.ts";
import { crashPoint } from "../../crash-point.ts";
import { repairRestoredCopy } from "../disk/parity-repair.ts";
import { ExitCode, UsageError, errnoCode, errorMessage, type ExitCode as ExitCodeValue } from "../../errors.ts";
import { formatHash, hashAlgorithmOf } from "../../hashing.ts";
import { fsPath, quotedPath, readLinkText } from "../../fs/byte-names.ts";
import { exactMtime, setTimes } from "../../fs/exact-mtime.ts";
import { copyReadable, describeRanges, isUnreadableData } from "../../fs/salvage-read.ts";
import { removeDeadTemps, writerTempName } from "../../fs/dead-temps.ts";
import type { RunError } from "../run/report.ts";
import { formatBytes } from "../../size.ts";
import { DeferredQueue } from "../catalog/deferred-actions-table.ts";
import { describeDeferred, describeStale } from "../disk/mount-disks.ts";
import { openArchive } from "./open-disks.ts";
import type { Output } from "../../cli/output.ts";

export interface RestoreOptions {
  readonly paths: readonly string[];
  readonly to: string;
  readonly overwrite?: boolean;
  readonly signal?: AbortSignal;
}

export interface RestoreResult {
  readonly exitCode: ExitCodeValue;
  readonly restored: number;
  /** Already present from an earlier restore (same size and mtime): not redone. */
  readonly skipped: number;
  readonly bytes: number;
  /** Restored, but the bytes read do not match the archived hash. */
  readonly damaged: readonly RunError[];
  readonly errors: readonly RunError[];
  /** Disks that hold matching files but are not mounted. */
  readonly disksNeeded: readonly { label: string; files: number; bytes: number }[];
}

/**
 * Copies archived files from the mounted disks back under `to`, at their
 * absolute paths, checking every hash as it reads. Hardlinked sources come
 * back hardlinked; mtime, mode and symlinks are restored.
 */
export async function restoreFiles(settings: Settings, options: RestoreOptions, output?: Output): Promise<RestoreResult> {
  if (!options.to) throw new UsageError("restore: --to DIR is required");
  if (options.paths.length === 0) throw new UsageError("restore: name at least one PATH (an archived path, a directory or a glob)");
  const to = resolve(options.to);
  // A writing open: deferred actions are applied before anything is read from a
  // disk; an encrypted disk with nothing to settle is mounted read-only.
  const archive = await openArchive(settings, { write: true, settleOnly: true, signal: options.signal });
  const damaged: RunError[] = [];
  const errors: RunError[] = [];
  const needed = new Map<string, { files: number; bytes: number }>();
  let restored = 0;
  let skipped = 0;
  let bytes = 0;
  let matched = 0;
  try {
    for (const line of [...archive.unsettled.map((message) => `warning: ${message}`), ...describeStale(archive.stale), ...describeDeferred(archive.deferred)]) output?.say(line);
    // Per disk, the copy to read: one whose deferred actions are all applied
    // if any; a copy still behind serves only the paths no action waits for.
    const queue = new DeferredQueue(archive.catalog);
    const stale = new Set(archive.stale.map((copy) => copy.dir));
    const behind = new Set([...archive.deferred.filter((result) => result.remaining > 0).map((result) => result.root), ...archive.disks.filter((disk) => stale.has(disk.dir)).map((disk) => disk.root)]);
    const mounted = new Map<string, (typeof archive.disks)[number]>();
    for (const disk of archive.disks) {
      const chosen = mounted.get(disk.label.diskId);
      if (!chosen || (behind.has(chosen.root) && !behind.has(disk.root))) mounted.set(disk.label.diskId, disk);
    }
    const sharedInodes = archive.catalog.files.sharedInodes();
    const firstOfInode = new Map<string, string>();
    const cleanedDirs = new Set<string>();
    for (const file of selectFiles(archive.catalog, options.paths)) {
      options.signal?.throwIfAborted();
      matched++;
      const target = join(to, file.path);
      removeStaleTemps(dirname(target), cleanedDirs);
      // Names of one source inode come back as one inode: files, and symlinks
      // hardlinked with link(2) (of the same target, in case inodes were reused).
      const shared = sharedInodes.has(`${file.dev}:${file.ino}`);
      const inodeKey = `${file.kind}:${file.dev}:${file.ino}:${file.kind === "symlink" ? file.linkTarget : ""}`;
      const existing = options.overwrite ? undefined : lstatQuiet(target);
      // Restored by an earlier, interrupted or partial restore, from whichever
      // disk was mounted then: done, whether or not its disk is mounted now.
      if (existing && alreadyRestored(existing, file, target)) {
        skipped++;
        if (shared && !firstOfInode.has(inodeKey)) firstOfInode.set(inodeKey, target);
        continue;
      }
      const candidate = mounted.get(file.diskId);
      const disk = candidate && behind.has(candidate.root) && queue.waitsFor(candidate.label.copyId, file.path) ? undefined : candidate;
      if (!disk) {
        const entry = needed.get(file.diskId) ?? { files: 0, bytes: 0 };
        entry.files++;
        entry.bytes += file.size;
        needed.set(file.diskId, entry);
        continue;
      }
      try {
        if (existing) {
          errors.push({ path: target, message: "exists; use --overwrite to replace it" });
          continue;
        }
        mkdirSync(fsPath(dirname(target)), { recursive: true });
        const linkTo = shared ? firstOfInode.get(inodeKey) : undefined;
        if (linkTo) {
          replaceWith(target, (temp) => linkSync(fsPath(linkTo), fsPath(temp)));
        } else if (file.kind === "symlink") {
          replaceWith(target, (temp) => {
            symlinkSync(fsPath(file.linkTarget ?? ""), fsPath(temp));
            setTimes(temp, exactMtime(file.mtimeMs, file.mtimeNsec), { noFollow: true });
          });
          if (shared) firstOfInode.set(inodeKey, target);
        } else {
          const read = await restoreFile(file, disk.layout.dataPath(file.path), target, options.signal);
          const ok = read.matches ? read : await repairRestoredCopy(disk, file, target, read, output, options.signal);
          if (!ok.matches) {
            // The bytes read are kept (most of a film beats none), but not under the file's
            // own name: there, with its archived mtime, a later restore would take it as done.
            const kept = `${target}.blaine-damaged`;
            renameSync(fsPath(target), fsPath(kept));
            const why = read.unreadable ? `${read.unreadable} (zeros in their place)` : `hash mismatch: archived ${file.hash}, read ${ok.hash}`;
            damaged.push({ path: file.path, message: `${why}; the bytes read are kept as ${kept}` });
            continue;
          }
          bytes += file.size;
          if (shared) firstOfInode.set(inodeKey, target);
        }
        restored++;
      } catch (error) {
        const code = errnoCode(error);
        errors.push({ path: file.path, message: code === "ENOENT" ? `missing on disk "${disk.label.label}"` : errorMessage(error) });
      }
    }
    if (matched === 0) throw new UsageError(`nothing archived matches ${options.paths.join(" ")}`);
    const labels = archive.catalog.disks.labels();
    const disksNeeded = [...needed].map(([id, entry]) => ({ label: labels.get(id) ?? id, ...entry }));
    const exitCode = damaged.length > 0 ? ExitCode.damage : disksNeeded.length > 0 ? ExitCode.incomplete : errors.length > 0 ? ExitCode.failure : ExitCode.ok;
    const result: RestoreResult = { exitCode, restored, skipped, bytes, damaged, errors, disksNeeded };
    if (output) printRestore(result, to, output);
    return result;
  } finally {
    archive.close();
  }
}

async function restoreFile(file: HostFileRow, source: string, target: string, signal?: AbortSignal): Promise<{ matches: boolean; hash: string; unreadable?: string }> {
  let hash = "";
  let unreadable: string | undefined;
  replaceWithSync(target);
  const temp = tempBeside(target);
  try {
    try {
      const copied = await copyWithHash({ source, target: temp, algorithm: hashAlgorithmOf(file.hash), mode: file.mode, mtimeMs: file.mtimeMs, mtimeNsec: file.mtimeNsec, signal });
      hash = copied.hash;
    } catch (error) {
      if (!isUnreadableData(error)) throw error;
      // The disk refuses some bytes (bad sector, an encrypted block that fails its check): the rest is
      // copied with zeros in their place, so the copy's hash does not match and parity repairs it.
      rmSync(fsPath(temp), { force: true });
      const hasher = new Bun.CryptoHasher(hashAlgorithmOf(file.hash));
      const ranges = copyReadable(source, temp, hasher);
      hash = formatHash(hashAlgorithmOf(file.hash), hasher);
      chmodSync(fsPath(temp), file.mode);
      setTimes(temp, exactMtime(file.mtimeMs, file.mtimeNsec));
      unreadable = ranges.length > 0 ? `${describeRanges(ranges)} could not be read on the disk` : undefined;
    }
    crashPoint("restore-before-rename");
    renameSync(fsPath(temp), fsPath(target));
  } finally {
    rmSync(fsPath(temp), { force: true });
  }
  return { matches: hash === file.hash, hash, unreadable };
}

/** What a restore's temps start with: the sweep of a directory finds a killed restore's, whichever file they were for. */
const TEMP_PREFIX = ".blaine-restore-";

/** A temp beside `target`: `.blaine-restore-RANDOM.PID@HOST.tmp` (dead-temps.ts), random as several copies may run at once. */
function tempBeside(target: string): string {
  return join(dirname(target), writerTempName(`${TEMP_PREFIX}${Math.random().toString(36).slice(2, 8)}.`));
}

/**
 * Removes the temps a killed restore left in `dir` (those whose writer on
 * this host is gone: a restore still running into the same tree keeps its
 * own, and another host's are that host's), once per directory. The re-run
 * of the restore visits the same directories, so what a kill -9 left is
 * gone after it.
 */
function removeStaleTemps(dir: string, cleaned: Set<string>): void {
  if (cleaned.has(dir)) return;
  cleaned.add(dir);
  removeDeadTemps(dir, TEMP_PREFIX);
}

/** Makes `target` by building it under a temp name, then renaming over. */
function replaceWith(target: string, make: (temp: string) => void): void {
  const temp = tempBeside(target);
  try {
    make(temp);
    renameSync(fsPath(temp), fsPath(target));
  } finally {
    rmSync(fsPath(temp), { force: true });
  }
}

/** A directory in the way of a file cannot be renamed over: only empty ones are removed. */
function replaceWithSync(target: string): void {
  const path = fsPath(target);
  if (existsSync(path) && lstatSync(path).isDirectory()) rmSync(path);
}

function lstatQuiet(path: string): Stats | undefined {
  try {
    return lstatSync(fsPath(path));
  } catch {
    return undefined;
  }
}

function alreadyRestored(existing: Stats, file: HostFileRow, target: string): boolean {
  if (file.kind === "symlink") return existing.isSymbolicLink() && readLinkText(target) === file.linkTarget;
  return existing.isFile() && existing.size === file.size && Math.abs(existing.mtimeMs - file.mtimeMs) < 1;
}

function printRestore(result: RestoreResult, to: string, output: Output): void {
  for (const error of result.errors) output.say(`error: ${quotedPath(error.path)}: ${error.message}`);
  for (const item of result.damaged) output.say(`DAMAGED: ${quotedPath(item.path)}: ${item.message}`);
  output.say(`Restored ${result.restored} files (${formatBytes(result.bytes)}) under ${to}${result.skipped ? ` (${result.skipped} already there)` : ""}; ${result.damaged.length} damaged, ${result.errors.length} errors.`);
  if (result.disksNeeded.length > 0) {
    output.say("Still needed (mount these and run the same command again):");
    for (const disk of result.disksNeeded) output.say(`  disk "${disk.label}": ${disk.files} files, ${formatBytes(disk.bytes)}`);
  }
  output.result(result);
}
