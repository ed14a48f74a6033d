/**
 * One read buffer per thread for the engine's synchronous readers (packet
 * scans, slice checks), reused from file to file: a new 4 MiB buffer for
 * each file of a set left the collector tens of megabytes to find, and the
 * peak memory of a verify grew with the number of files. Only for code that
 * uses its bytes up before it awaits (another reader would take the same
 * bytes meanwhile).
 */
let buffer = new Uint8Array(0);

/** Reads go in pieces of this much where the caller may choose (larger reads measured no faster). */
export const SCRATCH_READ = 1024 * 1024;

export function scratchBuffer(size: number): Uint8Array {
  if (buffer.length < size) buffer = new Uint8Array(size);
  return buffer.subarray(0, size);
}

/**
 * Lets the buffer go (the next reader makes it again): for a process whose
 * reading is over before its peak (blaine par2 repair, whose products come
 * after the check), so the megabyte is not held through it.
 */
export function releaseScratch(): void {
  buffer = new Uint8Array(0);
}
