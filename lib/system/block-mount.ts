import { readFileSync } from "node:fs";
import { BlaineError } from "../errors.ts";
import { lastLines } from "./cipher-tool.ts";
import { zx } from "./exec.ts";
import { unmountRetrying } from "./fuse-mount.ts";

/**
 * Kernel mounts that are not FUSE (ext4 and btrfs on a device, cifs): mount
 * and umount. Whether something is mounted is asked of mountinfo (mountAt).
 */
export interface KernelMountOptions {
  /** `-t TYPE`; omitted lets mount probe the device. */
  readonly type?: string;
  readonly readonly?: boolean;
  /** Extra `-o` options, comma-separated. */
  readonly options?: string;
}

export function mountArguments(source: string, target: string, options: KernelMountOptions): string[] {
  const flags = [options.readonly ? "ro" : "rw", ...(options.options ? [options.options] : [])].join(",");
  return [...(options.type ? ["-t", options.type] : []), "-o", flags, source, target];
}

export async function mountKernel(source: string, target: string, options: KernelMountOptions, what: string): Promise<void> {
  const $ = await zx();
  const result = await $`mount ${mountArguments(source, target, options)}`.nothrow();
  if (result.exitCode !== 0) throw new BlaineError(`could not mount ${what}: ${lastLines(result.stderr)}`);
}

/** Unmounts a kernel mount; a busy one is retried briefly, then detached lazily when allowed. */
export async function unmountKernel(target: string, options: { readonly lazy?: boolean } = {}): Promise<void> {
  await unmountRetrying(target, options, (lazy) => ["umount", ...(lazy ? ["-l"] : []), target], lastLines);
}

/** Whether the running kernel knows a file system type (built in, loaded, or a module it can load). */
export function kernelHasFileSystem(type: string): boolean {
  try {
    if (readFileSync("/proc/filesystems", "utf8").split("\n").some((line) => line.split("\t").at(-1) === type)) return true;
  } catch {
    return false;
  }
  try {
    const release = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
    return new RegExp(`/${type}\\.ko`).test(readFileSync(`/lib/modules/${release}/modules.dep`, "utf8"));
  } catch {
    return false;
  }
}
