import { readSync } from "node:fs";

/** Reads `length` bytes at `position` into `into`, fewer only at the end of the file; returns how many it got. */
export function readAt(fd: number, into: Uint8Array, length: number, position: number): number {
  let got = 0;
  while (got < length) {
    const n = readSync(fd, into, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}
