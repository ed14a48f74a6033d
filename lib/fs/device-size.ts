import { readFileSync, type Stats } from "node:fs";

/**
 * The size of a file or a block device. stat(2) says 0 for a block device;
 * the kernel's /sys/dev/block/MAJOR:MINOR/size says its size in 512-byte
 * sectors (loop devices and partitions included).
 */
export function sizeOf(stats: Stats): number {
  if (!stats.isBlockDevice()) return stats.size;
  const major = Math.floor(stats.rdev / 256) & 0xfff;
  const minor = (stats.rdev & 0xff) | ((Math.floor(stats.rdev / 4096) & 0xfff00));
  return Number(readFileSync(`/sys/dev/block/${major}:${minor}/size`, "utf8").trim()) * 512;
}
