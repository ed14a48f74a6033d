import { closeSync, existsSync, fstatSync, openSync, renameSync, rmSync, statSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { crashPoint } from "../../crash-point.ts";
import { fsyncDirectory, requireFolderOf } from "../../fs/atomic.ts";
import { sizeOf } from "../../fs/device-size.ts";
import { BlaineError, ExitCode, UsageError, errnoCode } from "../../errors.ts";
import type { Output } from "../../cli/output.ts";
import { mapBounded } from "../../pipeline/bounded.ts";
import { formatBytes, formatDuration } from "../../size.ts";
import { tempBeside, type DeadTemps } from "../../fs/dead-temps.ts";
import type { BlockRow } from "../catalog/image-catalog.ts";
import type { ImageSettings } from "../settings.ts";
import { DamagedChunk } from "../store/chunk-format.ts";
import type { ChunkStore } from "../store/chunk-store.ts";
import { BlockWorkers, RESTORE_POOL } from "../workers/block-workers.ts";
import { imageProgress, interruptedExit, withInterrupt } from "./image-progress.ts";
import { openImageCatalog, openImageStore } from "./open-image.ts";
import { versionFromCatalog, versionFromStore, type VersionSource } from "./version-source.ts";

export interface RestoreImageRequest {
  readonly version: string;
  readonly target: string;
  /** Write only the blocks holding data (a new file keeps holes; a fresh volume reads zeros there). */
  readonly sparse: boolean;
  readonly force: boolean;
  /**
   * Block workers already started (RESTORE_POOL), so their threads boot
   * while the caller loads and opens the rest; used when the version's
   * block size is theirs, and closed by the restore either way. By default
   * the restore starts its own.
   */
  readonly workers?: BlockWorkers;
}

/** A range of the image that could not be restored, and why. */
export interface DamagedRange {
  readonly index: number;
  readonly offset: number;
  readonly length: number;
  readonly hash: string;
  readonly problem: string;
}

export interface RestoreImageResult {
  readonly exitCode: ExitCode;
  readonly uid: string;
  readonly target: string;
  readonly bytesWritten: number;
  readonly damaged: DamagedRange[];
  /** The version is incomplete (a backup that did not finish): what it holds was restored, the rest is not its data (exit 4). */
  readonly incomplete: boolean;
  /** Temps beside the target that restores killed with SIGKILL left, removed before this one began. */
  readonly deadTemps?: DeadTemps;
}

/** The line a restore says when it removed temps killed ones left beside `target`. */
export function deadTempsLine(target: string, dead: DeadTemps): string {
  const what = dead.removed > 1 ? `${dead.removed} temp files of restores killed before they finished` : "1 temp file of a restore killed before it finished";
  return `removed ${what}, beside ${target} (${formatBytes(dead.bytes)})`;
}

/**
 * Restores a stored block through the slot of `data`: checked against its
 * hash, then written at `target.position` by a worker thread. A store with
 * local chunk files has the chunk read by the worker too, along with its
 * decoding and check (reads overlap on every core); any other store's
 * chunk is read here into the slot's object space first. Undefined once
 * the block is written, else why it cannot be had.
 */
async function restoreBlock(store: ChunkStore, workers: BlockWorkers, hash: string, data: Uint8Array, target: { fd: number; position: number }): Promise<string | undefined> {
  if (store.chunkFile) return workers.restore(data, { hash, chunkFile: store.chunkFile(hash) }, target);
  const space = workers.objectSpace(data);
  let length: number | undefined;
  try {
    if (store.readChunkInto) length = await store.readChunkInto(hash, space);
    else {
      const object = await store.getChunk(hash);
      length = object?.length;
      if (object && object.length <= space.length) space.set(object);
    }
  } catch (error) {
    // An encrypted store's object that does not decrypt; a store that cannot be read stops the restore.
    if (error instanceof DamagedChunk) return `chunk damaged: ${error.message}`;
    throw error;
  }
  if (length === undefined) return "chunk missing from the store";
  if (length > space.length) return `chunk damaged: ${length} bytes, more than a block's object can be`;
  return workers.restore(data, { hash, objectLength: length }, target);
}

/**
 * `blaine image restore VERSION TARGET [--sparse] [--force]`: every block's
 * hash checked as it is read; a block missing or damaged in the store is
 * listed and the rest restored (exit 4); an incomplete version restores what
 * it holds, says so and exits 4 too. A file target is written beside itself
 * and renamed into place, with the owner and mode of the file it replaces;
 * a block device is written in place. A
 * progress line at a terminal; Ctrl-C (SIGTERM) leaves a file target as it
 * was, says so and exits 130 (143).
 */
export async function restoreImage(settings: ImageSettings, request: RestoreImageRequest, output: Output): Promise<RestoreImageResult> {
  const store = await openImageStore(settings, { create: false });
  const catalog = settings.db ? await openImageCatalog(settings, { create: false }) : undefined;
  try {
    const source = catalog ? await versionFromCatalog(catalog, request.version) : await versionFromStore(store, request.version);
    const device = existsSync(request.target) && statSync(request.target).isBlockDevice();
    const outcome = await withInterrupt((signal) => restoreVersion(store, source, request, output, { signal, progress: true }));
    if (!outcome.interrupted) return outcome.value;
    const { uid } = source.version;
    console.error(
      device
        ? `interrupted: ${request.target} is partly written; restore again to finish it`
        : `interrupted: nothing was written to ${request.target} (the partial restore beside it is removed)`,
    );
    output.result({ uid, target: request.target, interrupted: outcome.interrupted });
    return { exitCode: interruptedExit(outcome.interrupted), uid, target: request.target, bytesWritten: 0, damaged: [], incomplete: source.version.status === "incomplete" };
  } finally {
    await catalog?.close();
  }
}

/**
 * Restores a version from a store already open (a volume archive's
 * destination). `signal` stops it (a file target is left as it was; the
 * abort's reason is thrown); `progress` draws the progress line at a terminal.
 */
export async function restoreVersion(
  store: ChunkStore,
  source: VersionSource,
  request: RestoreImageRequest,
  output: Output,
  options: { readonly signal?: AbortSignal; readonly progress?: boolean } = {},
): Promise<RestoreImageResult> {
  const { version } = source;
  const { target } = request;
  // Said of the target: the first to find the folder missing (or a file) would be the open of the hidden temp beside it.
  requireFolderOf(target);
  const existing = statSync(target, { throwIfNoEntry: false });
  const device = existing?.isBlockDevice() ?? false;
  if (existing && !request.force) {
    throw new UsageError(`${target} exists${device ? " (a block device)" : ""}; give --force to overwrite it`);
  }
  if (existing && !device && !existing.isFile()) throw new UsageError(`${target}: not a file or a block device`);
  if (device) {
    const fd = openSync(target, "r");
    try {
      const size = sizeOf(fstatSync(fd));
      if (size < version.size) throw new UsageError(`${target} holds ${size} bytes; version ${version.uid} needs ${version.size}`);
    } finally {
      closeSync(fd);
    }
  }
  const incomplete = version.status === "incomplete";
  if (incomplete) {
    // Exit 0 would pass for a good restore: the blocks its backup never reached are not the image's data. A
    // --from backup's version inherits its base's blocks from its start, so those are the base's (older) data.
    const unrecorded = version.baseUid
      ? `restored as its base, version ${version.baseUid}, holds them (older data)`
      : request.sparse && device
        ? `left as ${target} had them`
        : "restored as zeros";
    console.error(`warning: version ${version.uid} (${version.name}) is incomplete, a backup that did not finish: restoring what it holds; the blocks it never recorded are ${unrecorded}`);
  } else if (version.status !== "valid") output.say(`warning: version ${version.uid} is ${version.status}; restoring what it holds`);
  let temp = target;
  let deadTemps: DeadTemps = { removed: 0, bytes: 0 };
  if (!device) {
    // A restore killed with SIGKILL left its temp beside the target (as large as the image): nothing else removes it.
    ({ path: temp, dead: deadTemps } = tempBeside(target, "blaine-restore-"));
    if (deadTemps.removed > 0) output.say(deadTempsLine(target, deadTemps));
  }
  const handle = await open(temp, device ? "r+" : "w", 0o600);
  const damaged: DamagedRange[] = [];
  let bytesWritten = 0;
  // Blocks are fetched, decoded, checked and written from the workers' slots: a few in memory, whatever the image.
  let workers = request.workers;
  if (workers?.blockSize !== version.blockSize) {
    workers?.close();
    workers = new BlockWorkers(version.blockSize, RESTORE_POOL);
  }
  const started = performance.now();
  const progress = imageProgress(version.uid.slice(0, 8), { done: () => bytesWritten, planned: version.size, verb: "restored" });
  if (options.progress) progress.start();
  try {
    // The owner before any data (a user who may not give it is told before the image is written): a VM's disk
    // restored in place must stay its hypervisor's (libvirt-qemu, 0660), not become the restoring user's.
    // A file that already has the temp's owner needs no chown (some file systems refuse even that: NFS, FUSE).
    const made = existing && !device ? await handle.stat() : undefined;
    if (made && existing && (made.uid !== existing.uid || made.gid !== existing.gid)) {
      try {
        await handle.chown(existing.uid, existing.gid);
      } catch (error) {
        if (errnoCode(error) !== "EPERM") throw error;
        throw new BlaineError(`${target} is owned by uid ${existing.uid}, gid ${existing.gid}, which this user cannot give the restored file (restore as root, or remove ${target} first)`, ExitCode.usage);
      }
    }
    if (!device) await handle.truncate(version.size);
    const blockCount = Math.ceil(version.size / version.blockSize);
    // Rows for the blocks holding data; the indexes between them are zeros.
    async function* jobs(): AsyncGenerator<{ index: number; row: BlockRow | undefined }> {
      let next = 0;
      for await (const row of source.blocks()) {
        if (!request.sparse) for (; next < row.idx; next++) yield { index: next, row: undefined };
        yield { index: row.idx, row };
        next = row.idx + 1;
      }
      if (!request.sparse) for (; next < blockCount; next++) yield { index: next, row: undefined };
    }
    const zeros = new Uint8Array(version.blockSize);
    const lengthOf = (index: number) => Math.min(version.blockSize, version.size - index * version.blockSize);
    const work = mapBounded(
      jobs(),
      async ({ index, row }) => {
        const length = lengthOf(index);
        const offset = index * version.blockSize;
        if (!row?.hash) {
          // Dense: zeros written. --sparse: a new file reads zeros where nothing is written; a device keeps
          // what it held there (meant for fresh volumes, which read zeros).
          if (!request.sparse) await writeAll(handle, zeros.subarray(0, length), offset);
          return length;
        }
        const data = await workers.take(length);
        try {
          const problem = await restoreBlock(store, workers, row.hash, data, { fd: handle.fd, position: offset });
          if (problem !== undefined) {
            damaged.push({ index, offset, length, hash: row.hash, problem });
            return 0;
          }
          crashPoint("image-block-restored");
          return length;
        } finally {
          workers.give(data);
        }
      },
      { concurrency: 6, signal: options.signal },
    );
    for await (const written of work) bytesWritten += written;
    // The mode once the file is whole: a file replaced keeps its own (a VM's disk stays readable by its hypervisor);
    // a new one stays private (0600, as written): an image holds whatever its disk held, keys and passwords too, and
    // from an encrypted store it is the only plaintext copy. The user widens it who wants it shared.
    if (!device && existing) await handle.chmod(existing.mode & 0o7777);
    await handle.sync();
  } catch (error) {
    progress.stop();
    // The threads end first: one given a job whose answer was abandoned (another thread failed) may still be writing.
    await workers.close();
    await handle.close();
    if (!device) rmSync(temp, { force: true });
    throw error;
  } finally {
    workers.close();
  }
  progress.stop();
  await handle.close();
  if (!device) {
    renameSync(temp, target);
    fsyncDirectory(dirname(target));
  }
  damaged.sort((a, b) => a.index - b.index);
  for (const range of damaged) {
    output.say(`damaged: bytes ${range.offset}–${range.offset + range.length} (block ${range.index}, chunk ${range.hash}): ${range.problem}`);
  }
  const exitCode = damaged.length > 0 || incomplete ? ExitCode.damage : ExitCode.ok;
  if (!output.json) {
    const restored = `restored ${incomplete ? "incomplete " : ""}version ${version.uid} to ${target}`;
    output.say(
      damaged.length > 0
        ? `${restored} except ${damaged.length} block(s) listed above (${formatBytes(damaged.reduce((sum, range) => sum + range.length, 0))} left as zeros)`
        : `${restored} (${formatBytes(version.size)} in ${formatDuration(performance.now() - started)})`,
    );
  }
  const result = { exitCode, uid: version.uid, target, bytesWritten, damaged, incomplete, deadTemps };
  output.result({ uid: version.uid, target, bytesWritten, incomplete, damaged });
  return result;
}

async function writeAll(handle: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) done += (await handle.write(data, done, data.length - done, position + done)).bytesWritten;
}

