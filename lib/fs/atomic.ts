import { closeSync, fsyncSync, openSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { dirname, basename, join } from "node:path";
import { crashPoint } from "../crash-point.ts";
import { UsageError, errnoCode } from "../errors.ts";
import { fsPath } from "./byte-names.ts";
import { tempBeside } from "./dead-temps.ts";

/**
 * syncfs(2) flushes a whole file system in one call. Batches of small files
 * are made durable with one syncfs instead of one fsync each: the same
 * guarantee, and thousands of times fewer flushes on a spinning disk.
 */
type Libc = { symbols: { syncfs: (fd: number) => number; sync_file_range: (fd: number, offset: number, length: number, flags: number) => number } };
let libc: Libc | null | undefined;

/** libc's syncfs and sync_file_range through bun:ffi, loaded on first use (loading FFI is a tenth of a run that has nothing to do). */
function loadLibc(): Libc | null {
  try {
    const { dlopen, FFIType } = require("bun:ffi") as typeof import("bun:ffi");
    return dlopen("libc.so.6", {
      syncfs: { args: [FFIType.i32], returns: FFIType.i32 },
      sync_file_range: { args: [FFIType.i32, FFIType.i64, FFIType.i64, FFIType.u32], returns: FFIType.i32 },
    }) as unknown as Libc;
  } catch {
    return null;
  }
}

const SYNC_FILE_RANGE_WRITE = 2;

/**
 * Starts writing a range of a file out to its disk now, without waiting
 * for it (sync_file_range's WRITE): a large copy's bytes reach the disk
 * while it is still copying, instead of piling up in the page cache until
 * the kernel's threshold (a tenth of memory) and then all waiting in the
 * batch's syncfs. Durability is still the syncfs's; where the call is not
 * supported (a FUSE disk) nothing happens.
 */
export function startWriteback(fd: number, offset: number, length: number): void {
  if (libc === undefined) libc = loadLibc();
  libc?.symbols.sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE);
}

/**
 * FUSE file systems (an encrypted disk's gocryptfs or securefs mount) do not
 * pass syncfs on to the file system they write to; their writes reach it
 * synchronously, so syncing that one instead is what makes them durable.
 */
const backingOfMount = new Map<string, string>();

/** Registers (or, with undefined, forgets) the directory whose file system holds a FUSE mount's data. */
export function syncThroughMount(mountpoint: string, backing: string | undefined): void {
  if (backing === undefined) backingOfMount.delete(mountpoint);
  else backingOfMount.set(mountpoint, backing);
}

function syncfsOne(path: string): void {
  const fd = openSync(path, "r");
  try {
    if (libc === undefined) libc = loadLibc();
    if (!libc || libc.symbols.syncfs(fd) !== 0) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Makes everything written on the file system holding `path` durable. */
export function syncFileSystem(path: string): void {
  syncfsOne(path);
  for (const [mountpoint, backing] of backingOfMount) {
    if (path === mountpoint || path.startsWith(`${mountpoint}/`)) syncfsOne(backing);
  }
}

export function fsyncDirectory(path: string): void {
  const fd = openSync(fsPath(path), "r");
  try {
    fsyncSync(fd);
  } catch (error) {
    // Some file systems (and FUSE layers) refuse fsync on directories.
    if (errnoCode(error) !== "EINVAL") throw error;
  } finally {
    closeSync(fd);
  }
}

/** fsyncDirectory off the main thread (a store flushing the directories its renames went into). */
export async function fsyncDirectoryAsync(path: string): Promise<void> {
  await fsyncAsync(path, { refusedOnDirectories: true });
}

/** A file made durable on the I/O threads (a volume's snapshot while its session is read). */
export async function fsyncFileAsync(path: string): Promise<void> {
  await fsyncAsync(path, { refusedOnDirectories: false });
}

/** node:fs/promises, loaded on first use and kept: an import() per call (a chunk written, a directory synced) was a trip through the module loader each time. */
let fsPromises: typeof import("node:fs/promises") | undefined;

async function fsyncAsync(path: string, options: { readonly refusedOnDirectories: boolean }): Promise<void> {
  const { open } = (fsPromises ??= await import("node:fs/promises"));
  const handle = await open(fsPath(path), "r");
  try {
    await handle.sync();
  } catch (error) {
    if (!options.refusedOnDirectories || errnoCode(error) !== "EINVAL") throw error;
  } finally {
    await handle.close();
  }
}

/**
 * Writes a file so that readers see either the old or the new content, never
 * a part. The temps of earlier writes of `path` killed with SIGKILL are
 * removed first (see dead-temps.ts): nothing else would.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): void {
  const temp = tempBeside(path, "", { unique: true }).path;
  // A private file (a key) is private from its first byte: the mode is set at creation.
  const fd = openSync(temp, "w", mode);
  try {
    try {
      const bytes = typeof data === "string" ? Buffer.from(data) : data;
      let offset = 0;
      while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    crashPoint("atomic-write-before-rename");
    renameSync(temp, path);
  } catch (error) {
    // A full disk or an I/O error: no half-written temp is left beside the file.
    rmSync(temp, { force: true });
    throw error;
  }
  fsyncDirectory(dirname(path));
}

/**
 * `writeFileAtomic` off the main thread: the write, fsync and rename run on
 * the I/O threads, so a pipeline keeps hashing while a large file lands.
 * `mode` as for writeFileAtomic; `sync: false` leaves durability to a later
 * syncfs of the whole file system (the rename still makes it all or nothing).
 */
export async function writeFileAtomicAsync(path: string, data: Uint8Array, options: { readonly sync?: boolean } = {}): Promise<void> {
  const { rename, rm, writeFile } = (fsPromises ??= await import("node:fs/promises"));
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  try {
    // One trip to the I/O threads for the temp (made new, written, fsynced by `flush`, closed), not four:
    // each trip costs the main thread a promise and a wake-up, and a backup writes a chunk per block.
    await writeFile(temp, data, { mode: 0o644, flag: "wx", flush: options.sync !== false });
    await rename(temp, path);
  } catch (error) {
    // EEXIST: the name is another writer's temp, not ours to remove.
    if (errnoCode(error) !== "EEXIST") await rm(temp, { force: true });
    throw error;
  }
}

/**
 * Refuses a target whose folder is missing or is not a folder, as a usage
 * error naming it, before a temp is made beside the target: the temp's
 * ENOENT or ENOTDIR named a hidden file the user never asked for.
 */
export function requireFolderOf(target: string): void {
  const folder = dirname(target);
  let isFolder: boolean;
  try {
    isFolder = statSync(folder).isDirectory();
  } catch {
    throw new UsageError(`${target}: its folder ${folder} does not exist`);
  }
  if (!isFolder) throw new UsageError(`${target}: ${folder} is not a folder`);
}
