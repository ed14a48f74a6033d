import { BlaineError } from "../errors.ts";
import { lastLines } from "./cipher-tool.ts";
import { zx } from "./exec.ts";

/** btrfs-progs: a file system, subvolumes, read-only snapshots and their sizes. */
async function btrfs(args: readonly string[], what: string): Promise<string> {
  const $ = await zx();
  const result = await $`btrfs ${args}`.nothrow();
  if (result.exitCode !== 0) throw new BlaineError(`${what}: ${lastLines(result.stderr)}`);
  return result.stdout;
}

export async function makeBtrfs(device: string, label: string): Promise<void> {
  const $ = await zx();
  const result = await $`mkfs.btrfs -q -f -L ${label} ${device}`.nothrow();
  if (result.exitCode !== 0) throw new BlaineError(`mkfs.btrfs ${device} failed: ${lastLines(result.stderr)}`);
}

export async function createSubvolume(path: string): Promise<void> {
  await btrfs(["subvolume", "create", path], `could not create the subvolume ${path}`);
}

export async function snapshotReadOnly(source: string, target: string): Promise<void> {
  await btrfs(["subvolume", "snapshot", "-r", source, target], `could not snapshot ${source} as ${target}`);
}

export async function deleteSubvolume(path: string): Promise<void> {
  await btrfs(["subvolume", "delete", path], `could not delete the subvolume ${path}`);
}

/** Bytes a subvolume refers to and those only it holds (shared with no other snapshot), from `btrfs filesystem du`. */
export async function subvolumeUsage(path: string): Promise<{ readonly totalBytes: number; readonly exclusiveBytes: number }> {
  const out = await btrfs(["filesystem", "du", "-s", "--raw", path], `could not measure ${path}`);
  const numbers = out.trim().split("\n").at(-1)?.trim().split(/\s+/) ?? [];
  return { totalBytes: Number(numbers[0]) || 0, exclusiveBytes: Number(numbers[1]) || 0 };
}
