import { BlaineError } from "../errors.ts";
import { lastLines } from "./cipher-tool.ts";
import { zx } from "./exec.ts";

/**
 * A reflink copy: a new file sharing every extent of the original (FICLONE,
 * through `cp --reflink=always`), made at once whatever the size, on file
 * systems that can (btrfs, XFS with reflink). Refused elsewhere: then
 * `ReflinkUnsupported`, and the caller reads the whole file instead.
 */
export class ReflinkUnsupported extends BlaineError {}

export async function reflinkCopy(source: string, target: string): Promise<void> {
  const $ = await zx();
  const result = await $`cp --reflink=always --no-preserve=all ${source} ${target}`.nothrow();
  if (result.exitCode === 0) return;
  const said = lastLines(result.stderr);
  if (/not supported|invalid cross-device|operation not permitted|Invalid argument/i.test(said)) {
    throw new ReflinkUnsupported(`${source}: its file system cannot make reflink copies (${said})`);
  }
  throw new BlaineError(`could not make a reflink copy of ${source} at ${target}: ${said}`);
}
