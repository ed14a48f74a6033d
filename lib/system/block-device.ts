import { BlaineError } from "../errors.ts";
import { zx } from "./exec.ts";

/**
 * Finds a block device by `UUID=…`, `LABEL=…` or path through blkid, which
 * reads the devices themselves (no udev needed, no /dev/disk/by-uuid).
 */
export async function resolveBlockDevice(spec: string): Promise<string> {
  const match = /^(UUID|LABEL)=(.+)$/.exec(spec);
  if (!match) return spec;
  const $ = await zx();
  const result = await $`blkid ${match[1] === "UUID" ? "-U" : "-L"} ${match[2]}`.nothrow();
  const device = result.stdout.trim();
  if (result.exitCode !== 0 || !device) throw new BlaineError(`no block device has ${spec} (blkid found none)`);
  return device;
}
