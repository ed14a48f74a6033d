/**
 * What the walk needs of an lstat, and a cheaper way to get it for a
 * directory's entries. `lstatSync` resolves the whole path and builds a
 * Stats object on every call, about a third of a walk's cost; fstatat(2)
 * relative to the directory's descriptor, read into one reused buffer
 * through bun:ffi, skips both. Linux x86-64 only (the struct's layout);
 * elsewhere, and whenever a call fails, `lstatSync` answers instead, so
 * errors read exactly as they always did.
 */
import { closeSync, constants, lstatSync, openSync, type Stats } from "node:fs";
import { BYTE_ESCAPE, bytesOfText, fsPath } from "./byte-names.ts";
import { mtimeNsecOf } from "./exact-mtime.ts";

export interface EntryStat {
  /** Type and permission bits (st_mode), as `Stats.mode`. */
  readonly mode: number;
  readonly size: number;
  /** As `Stats.mtimeMs` computes it: seconds × 1000 + nanoseconds / 10⁶ (the catalog compares it exactly). */
  readonly mtimeMs: number;
  /** st_mtim.tv_nsec: the mtime exactly, with the whole seconds of mtimeMs (see exact-mtime.ts). */
  readonly mtimeNsec: number;
  readonly dev: number;
  readonly ino: number;
  readonly nlink: number;
}

const S_IFMT = 0o170000;
export const isDirectoryMode = (mode: number): boolean => (mode & S_IFMT) === 0o040000;
export const isFileMode = (mode: number): boolean => (mode & S_IFMT) === 0o100000;
export const isSymlinkMode = (mode: number): boolean => (mode & S_IFMT) === 0o120000;

/** What a mode that is neither file, directory nor symlink is, for the skip report. */
export function describeSpecialMode(mode: number): string {
  switch (mode & S_IFMT) {
    case 0o010000:
      return "a fifo";
    case 0o140000:
      return "a socket";
    case 0o020000:
    case 0o060000:
      return "a device";
    default:
      return "not a regular file";
  }
}

/** `mtimeNsec` comes apart: a Stats of numbers has lost it (a bigint lstat has it). */
export function entryStatOf(stats: Stats, mtimeNsec: number): EntryStat {
  return { mode: stats.mode, size: stats.size, mtimeMs: stats.mtimeMs, mtimeNsec, dev: stats.dev, ino: stats.ino, nlink: stats.nlink };
}

/** lstat through node:fs (throws its usual errors); a second, bigint lstat for the exact mtime. */
export function lstatEntry(path: string): EntryStat {
  const stats = lstatSync(fsPath(path));
  return entryStatOf(stats, mtimeNsecOf(lstatSync(fsPath(path), { bigint: true })));
}

type FstatAt = (dirFd: number, name: Uint8Array, buffer: Uint8Array, flags: number) => number;
const AT_SYMLINK_NOFOLLOW = 0x100;
/** sizeof(struct stat) on Linux x86-64. */
const STAT_SIZE = 144;
const TWO_32 = 4294967296;

let fstatat: FstatAt | null | undefined;
/** Whether the fast path's first answer agreed with lstatSync (see statEntry). */
let checked = false;
const statBuffer = new Uint8Array(STAT_SIZE);
const statWords = new Uint32Array(statBuffer.buffer);
const statSigned = new Int32Array(statBuffer.buffer);
/** A name's bytes, NUL-terminated (names are at most 255 bytes on Linux). */
const nameBuffer = new Uint8Array(4096);
const encoder = new TextEncoder();

function loadFstatat(): FstatAt | null {
  if (process.platform !== "linux" || process.arch !== "x64") return null;
  try {
    const { dlopen, FFIType } = require("bun:ffi") as typeof import("bun:ffi");
    const libc = dlopen("libc.so.6", { fstatat: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.i32 } });
    return libc.symbols.fstatat as unknown as FstatAt;
  } catch {
    return null;
  }
}

/**
 * lstat for the entries of one directory: `statEntry(name)` for each, then
 * `close()`. Falls back to `lstatSync` of the full path wherever the fast
 * call is unavailable or fails (then throwing lstatSync's error).
 */
export class DirectoryStats {
  readonly #dir: string;
  readonly #fd: number | undefined;

  constructor(dir: string) {
    this.#dir = dir;
    if (fstatat === undefined) fstatat = loadFstatat();
    let fd: number | undefined;
    if (fstatat) {
      try {
        fd = openSync(fsPath(dir), constants.O_RDONLY | constants.O_DIRECTORY);
      } catch {
        // Entries are lstat'ed by path instead, reporting their own errors.
      }
    }
    this.#fd = fd;
  }

  statEntry(name: string): EntryStat {
    if (this.#fd !== undefined && fstatat && this.#encodeName(name) && fstatat(this.#fd, nameBuffer, statBuffer, AT_SYMLINK_NOFOLLOW) === 0) {
      const fast = readStat();
      if (checked) return fast;
      // The first answer is checked against lstatSync: the catalog compares
      // mtimeMs exactly with what the copier's fstat says, so a Bun whose
      // Stats compute it differently (or another struct layout) must not
      // get the fast path at all.
      const slow = lstatEntry(this.#pathOf(name));
      checked = true;
      if (sameStat(fast, slow)) return fast;
      fstatat = null;
      return slow;
    }
    return lstatEntry(this.#pathOf(name));
  }

  #pathOf(name: string): string {
    return this.#dir === "/" ? `/${name}` : `${this.#dir}/${name}`;
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
  }

  #encodeName(name: string): boolean {
    let length: number;
    if (name.includes(BYTE_ESCAPE)) {
      const bytes = bytesOfText(name);
      if (bytes.length >= nameBuffer.length) return false;
      nameBuffer.set(bytes);
      length = bytes.length;
    } else {
      const { read, written } = encoder.encodeInto(name, nameBuffer);
      if (read < name.length || written >= nameBuffer.length) return false;
      length = written;
    }
    nameBuffer[length] = 0;
    return true;
  }
}

function sameStat(a: EntryStat, b: EntryStat): boolean {
  return a.mode === b.mode && a.size === b.size && a.mtimeMs === b.mtimeMs && a.mtimeNsec === b.mtimeNsec && a.dev === b.dev && a.ino === b.ino && a.nlink === b.nlink;
}

/**
 * struct stat on Linux x86-64: st_dev u64 @0, st_ino u64 @8, st_nlink u64
 * @16, st_mode u32 @24, st_size i64 @48, st_mtim {i64 sec, i64 nsec} @88.
 * 64-bit fields become numbers as Bun's Stats makes them (rounded once
 * above 2^53: high × 2^32 is exact, adding the low word rounds).
 */
function readStat(): EntryStat {
  const sec = statSigned[23] * TWO_32 + statWords[22];
  const nsec = statWords[24];
  return {
    mode: statWords[6],
    size: statSigned[13] * TWO_32 + statWords[12],
    mtimeMs: sec * 1000 + nsec / 1_000_000,
    mtimeNsec: nsec,
    dev: statWords[1] * TWO_32 + statWords[0],
    ino: statWords[3] * TWO_32 + statWords[2],
    nlink: statWords[5] * TWO_32 + statWords[4],
  };
}
