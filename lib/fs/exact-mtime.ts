/**
 * Mtimes to the nanosecond. The catalogs keep `mtimeMs` (a double, what the
 * differ compares) and `mtimeNsec` (st_mtim.tv_nsec, exact); a double of
 * milliseconds since 1970 is some 100 ns coarse, and node's utimes, which
 * takes seconds as a double, another 200 ns. Times are set with
 * utimensat(2)/futimens(2) through bun:ffi (Linux, 64-bit: two
 * {i64 sec, i64 nsec}); elsewhere, or if the call cannot be loaded,
 * node's utimes answers, as exact as a double allows.
 */
import { futimesSync, lutimesSync, utimesSync, type BigIntStats } from "node:fs";
import { bytesOfText, fsPath } from "./byte-names.ts";

/** An mtime as whole seconds and the nanoseconds of that second (0 ≤ nsec < 10⁹). */
export interface ExactTime {
  readonly sec: number;
  readonly nsec: number;
}

const NS_PER_SEC = 1_000_000_000;

/**
 * The exact time from a catalog's pair; a row without `mtimeNsec` (archived
 * before it was kept) gives the nearest the double allows.
 */
export function exactMtime(mtimeMs: number, mtimeNsec?: number | null): ExactTime {
  if (mtimeNsec !== undefined && mtimeNsec !== null && mtimeNsec >= 0 && mtimeNsec < NS_PER_SEC) {
    // mtimeMs is sec × 1000 + nsec / 10⁶ to within a microsecond: the whole seconds round exactly.
    const sec = Math.round((mtimeMs - mtimeNsec / 1_000_000) / 1000);
    // A pair that does not belong together (mtimeMs changed without its nsec) is not trusted.
    if (Math.abs(sec * 1000 + mtimeNsec / 1_000_000 - mtimeMs) < 0.001) return { sec, nsec: mtimeNsec };
  }
  const sec = Math.floor(mtimeMs / 1000);
  const nsec = Math.min(NS_PER_SEC - 1, Math.max(0, Math.round((mtimeMs - sec * 1000) * 1_000_000)));
  return { sec, nsec };
}

/** tv_nsec of a bigint stat's mtime. */
export function mtimeNsecOf(stats: BigIntStats): number {
  const ns = BigInt(NS_PER_SEC);
  return Number(((stats.mtimeNs % ns) + ns) % ns);
}

type Utimensat = (dirFd: number, path: Uint8Array, times: Uint8Array, flags: number) => number;
type Futimens = (fd: number, times: Uint8Array) => number;
const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;

let calls: { utimensat: Utimensat; futimens: Futimens } | null | undefined;

function loadCalls(): typeof calls {
  if (process.platform !== "linux" || (process.arch !== "x64" && process.arch !== "arm64")) return null;
  try {
    const { dlopen, FFIType } = require("bun:ffi") as typeof import("bun:ffi");
    const libc = dlopen("libc.so.6", {
      utimensat: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
      futimens: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
    });
    return { utimensat: libc.symbols.utimensat as unknown as Utimensat, futimens: libc.symbols.futimens as unknown as Futimens };
  } catch {
    return null;
  }
}

/** atime and mtime both `time` (Blaine sets both, as it always has), as struct timespec[2]. */
function timespecs(time: ExactTime): Uint8Array {
  const buffer = new BigInt64Array(4);
  buffer[0] = buffer[2] = BigInt(time.sec);
  buffer[1] = buffer[3] = BigInt(time.nsec);
  return new Uint8Array(buffer.buffer);
}

function cString(path: string): Uint8Array {
  const bytes = bytesOfText(path);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** Sets an open file's atime and mtime to `time` exactly. */
export function setTimesFd(fd: number, time: ExactTime): void {
  calls ??= loadCalls();
  if (calls && calls.futimens(fd, timespecs(time)) === 0) return;
  futimesSync(fd, seconds(time), seconds(time));
}

/** Sets a path's atime and mtime to `time` exactly; a symlink's own with `noFollow`. */
export function setTimes(path: string, time: ExactTime, options: { noFollow?: boolean } = {}): void {
  calls ??= loadCalls();
  if (calls && calls.utimensat(AT_FDCWD, cString(path), timespecs(time), options.noFollow ? AT_SYMLINK_NOFOLLOW : 0) === 0) return;
  // The fallback also reports the error (ENOENT, EACCES) as node words it.
  if (options.noFollow) lutimesSync(fsPath(path), seconds(time), seconds(time));
  else utimesSync(fsPath(path), seconds(time), seconds(time));
}

const seconds = (time: ExactTime): number => time.sec + time.nsec / NS_PER_SEC;
