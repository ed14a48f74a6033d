import { readSync } from "node:fs";

/**
 * Reads `length` bytes at `position` into `into` from `at` on, fewer only at
 * the end of the file; returns how many it got. `at` saves a view per read
 * where a caller fills one buffer slot by slot (the products read every
 * input slice once per range: views by the ten thousand, and each is an
 * object for the collector).
 */
export function readAt(fd: number, into: Uint8Array, length: number, position: number, at = 0): number {
  let got = 0;
  while (got < length) {
    const n = readSync(fd, into, at + got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}
