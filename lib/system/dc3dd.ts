import { chmodSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type { CopyRequest, CopyResult } from "../copy/builtin-copy.ts";
import { crashPoint } from "../crash-point.ts";
import { BlaineError } from "../errors.ts";
import { copyWithHash } from "../copy/builtin-copy.ts";
import { hasEscapes } from "../fs/byte-names.ts";
import { scratchDirectory } from "../fs/dead-temps.ts";
import { exactMtime, setTimes } from "../fs/exact-mtime.ts";
import { looksSparse } from "../fs/sparse.ts";
import { PROGRESS_MS } from "../copy/copy-progress.ts";
import { zx } from "./exec.ts";

/**
 * Copies with dc3dd (the forensic dd) and reads the hash from its hash log,
 * for users who want a second, independent implementation doing the copy.
 * The catalog entry is the same as the built-in copier's.
 */
export async function copyWithDc3dd(request: CopyRequest): Promise<CopyResult> {
  // A name that is not UTF-8 cannot be passed to a program reliably (argv is
  // built from strings): such a file is copied by the built-in copier.
  if (hasEscapes(request.source) || hasEscapes(request.target)) return copyWithHash(request);
  // dc3dd writes holes out as zeros: a sparse file is copied by the built-in copier, which keeps them.
  if (looksSparse(statSync(request.source))) return copyWithHash(request);
  // Named by its writer: one killed with SIGKILL leaves it, and the next dc3dd copy removes it.
  const logDir = scratchDirectory("dc3dd");
  const hashLog = join(logDir, "hash.log");
  // dc3dd says nothing as it goes: the target's size is how far it got.
  const { onProgress } = request;
  const watch = onProgress && setInterval(() => onProgress(sizeOf(request.target)), PROGRESS_MS);
  try {
    const $ = await zx();
    const result = await $`dc3dd if=${request.source} of=${request.target} hash=${request.algorithm} hlog=${hashLog} nwspc=on`.nothrow();
    if (result.exitCode !== 0) {
      throw new BlaineError(`dc3dd failed copying ${request.source}: ${result.stderr.trim().split("\n").slice(-3).join(" ")}`);
    }
    crashPoint("dc3dd-copied");
    const hex = parseDc3ddHashLog(readFileSync(hashLog, "utf8"), request.algorithm);
    chmodSync(request.target, request.mode);
    setTimes(request.target, exactMtime(request.mtimeMs, request.mtimeNsec));
    const after = statSync(request.source);
    return { hash: `${request.algorithm}:${hex}`, size: statSync(request.target).size, sourceAfter: { size: after.size, mtimeMs: after.mtimeMs } };
  } finally {
    clearInterval(watch);
    rmSync(logDir, { recursive: true, force: true });
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** The input file's hash from a dc3dd hash log ("   <hex> (sha1)" under "input results"). */
export function parseDc3ddHashLog(log: string, algorithm: string): string {
  const input = log.slice(log.indexOf("input results"));
  const match = new RegExp(`^\\s*([0-9a-f]+) \\(${algorithm}\\)`, "m").exec(input);
  if (!match) throw new BlaineError(`dc3dd's hash log has no ${algorithm} of the input`);
  return match[1];
}
