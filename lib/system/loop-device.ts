import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename } from "node:path";
import { BlaineError } from "../errors.ts";
import { lastLines } from "./cipher-tool.ts";
import { zx } from "./exec.ts";

/** Loop devices (losetup): an image file seen as a block device. */
export async function attachLoop(file: string, options: { readonly readonly?: boolean } = {}): Promise<string> {
  const $ = await zx();
  const result = await $`losetup --find --show ${options.readonly ? ["--read-only"] : []} ${file}`.nothrow();
  if (result.exitCode !== 0) throw new BlaineError(`could not attach ${file} to a loop device: ${lastLines(result.stderr)}`);
  return result.stdout.trim();
}

/** The file behind a loop device, or undefined when it is detached. */
export function loopBackingFile(device: string): string | undefined {
  try {
    return readFileSync(`/sys/block/${basename(device)}/loop/backing_file`, "utf8").trim();
  } catch {
    return undefined;
  }
}

/** Detaches a loop device, if it still holds `file` (a reused device number belongs to someone else). */
export async function detachLoop(device: string, file?: string): Promise<void> {
  const backing = loopBackingFile(device);
  if (!backing || (file !== undefined && backing !== file && backing !== `${file} (deleted)`)) return;
  const $ = await zx();
  let message = "";
  for (let attempt = 0; attempt < 10; attempt++) {
    const result = await $`losetup -d ${device}`.nothrow();
    if (result.exitCode === 0 || !loopBackingFile(device)) return;
    message = lastLines(result.stderr);
    await Bun.sleep(100);
  }
  throw new BlaineError(`could not detach ${device} (${backing}): ${message}`);
}

/** Whether this kernel has loop devices. */
export function hasLoopDevices(): boolean {
  return existsSync("/dev/loop-control");
}

/** Every loop device whose backing file is `file` (found in /sys, so one attached by a killed run is found too). */
export function loopsBackedBy(file: string): string[] {
  let names: string[];
  try {
    names = readdirSync("/sys/block");
  } catch {
    return [];
  }
  return names.filter((name) => name.startsWith("loop")).map((name) => `/dev/${name}`).filter((device) => {
    const backing = loopBackingFile(device);
    return backing === file || backing === `${file} (deleted)`;
  });
}
