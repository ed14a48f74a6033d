import { closeSync, openSync, rmSync } from "node:fs";
import { BlaineError } from "../errors.ts";
import { lastLines } from "./cipher-tool.ts";
import { zx } from "./exec.ts";

/**
 * A reflink copy: a new file sharing every extent of the original, made at
 * once whatever the size, on file systems that can (btrfs, XFS with
 * reflink). The FICLONE ioctl through bun:ffi (a send makes one per volume,
 * and loading the shell to run `cp --reflink=always` cost it a fifth of a
 * second); `cp --reflink=always` where the call cannot be loaded. Refused
 * elsewhere: then `ReflinkUnsupported`, and the caller reads the whole file.
 */
export class ReflinkUnsupported extends BlaineError {}

/** FICLONE = _IOW(0x94, 9, int). */
const FICLONE = 0x40049409;
/** errno values meaning "this file system (or this pair of files) cannot share extents". */
const UNSUPPORTED = new Set([95 /* EOPNOTSUPP */, 18 /* EXDEV */, 22 /* EINVAL */, 25 /* ENOTTY */]);

interface Clone {
  ioctl(fd: number, request: number, source: number): number;
  errno(): number;
}
let clone: Clone | null | undefined;

function loadClone(): Clone | null {
  if (process.platform !== "linux") return null;
  try {
    const { dlopen, FFIType, read } = require("bun:ffi") as typeof import("bun:ffi");
    const libc = dlopen("libc.so.6", {
      ioctl: { args: [FFIType.i32, FFIType.u64, FFIType.i64], returns: FFIType.i32 },
      __errno_location: { args: [], returns: FFIType.ptr },
    });
    return {
      ioctl: (fd, request, source) => libc.symbols.ioctl(fd, request, source) as number,
      errno: () => read.i32(libc.symbols.__errno_location()!, 0),
    };
  } catch {
    return null;
  }
}

/**
 * Makes `target` (new; 0600: snapshots of disks are nobody else's) a reflink
 * copy of `source`. Not fsynced: the caller makes it durable when it must be
 * (a volume's snapshot, on the I/O threads while its session is read).
 */
export async function reflinkCopy(source: string, target: string): Promise<void> {
  clone ??= loadClone();
  if (!clone) return reflinkWithCp(source, target);
  const from = openSync(source, "r");
  try {
    const to = openSync(target, "wx", 0o600);
    let errno = 0;
    try {
      if (clone.ioctl(to, FICLONE, from) !== 0) errno = clone.errno();
    } finally {
      closeSync(to);
    }
    if (errno !== 0) {
      rmSync(target, { force: true });
      if (UNSUPPORTED.has(errno)) throw new ReflinkUnsupported(`${source}: its file system cannot make reflink copies (errno ${errno})`);
      throw new BlaineError(`could not make a reflink copy of ${source} at ${target} (errno ${errno})`);
    }
  } finally {
    closeSync(from);
  }
}

async function reflinkWithCp(source: string, target: string): Promise<void> {
  const $ = await zx();
  const result = await $`cp --reflink=always --no-preserve=all ${source} ${target}`.nothrow();
  if (result.exitCode === 0) return;
  const said = lastLines(result.stderr);
  if (/not supported|invalid cross-device|operation not permitted|Invalid argument/i.test(said)) {
    throw new ReflinkUnsupported(`${source}: its file system cannot make reflink copies (${said})`);
  }
  throw new BlaineError(`could not make a reflink copy of ${source} at ${target}: ${said}`);
}
