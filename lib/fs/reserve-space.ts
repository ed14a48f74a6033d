/**
 * A file that holds room on its file system for later, given up by deleting
 * it. fallocate(2) (through bun:ffi, loaded on first use) takes the blocks
 * without writing them: writing 20 MB of zeros cost a run with nothing to
 * do a tenth of its time. Where fallocate is refused (file systems without
 * it, some FUSE layers) zeros are written, as before.
 */
import { closeSync, openSync, writeSync } from "node:fs";
import { fsPath } from "./byte-names.ts";

type Fallocate = (fd: number, mode: number, offset: number, length: number) => number;
let fallocate: Fallocate | null | undefined;

function loadFallocate(): Fallocate | null {
  if (process.platform !== "linux") return null;
  try {
    const { dlopen, FFIType } = require("bun:ffi") as typeof import("bun:ffi");
    const libc = dlopen("libc.so.6", { fallocate: { args: [FFIType.i32, FFIType.i32, FFIType.i64, FFIType.i64], returns: FFIType.i32 } });
    return libc.symbols.fallocate as unknown as Fallocate;
  } catch {
    return null;
  }
}

/** Zeros written where fallocate is refused, a chunk at a time. */
const ZEROS = 1024 * 1024;

/**
 * Creates `path` (it must not exist) holding `bytes` of its file system.
 * Throws when there is no room for it (ENOSPC) or it cannot be created; the
 * caller removes what is left of it.
 */
export function reserveSpace(path: string, bytes: number): void {
  const fd = openSync(fsPath(path), "wx");
  try {
    if (fallocate === undefined) fallocate = loadFallocate();
    if (bytes === 0 || (fallocate && fallocate(fd, 0, 0, bytes) === 0)) return;
    const zeros = new Uint8Array(Math.min(ZEROS, bytes));
    for (let offset = 0; offset < bytes; ) offset += writeSync(fd, zeros, 0, Math.min(zeros.length, bytes - offset), offset);
  } finally {
    closeSync(fd);
  }
}
