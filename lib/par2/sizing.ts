/**
 * How a recovery set is shaped, with par2cmdline's meanings: slice size from
 * a block count or given directly, recovery count from a percentage or given
 * directly, and how recovery slices are spread over vol files.
 */

/** The spec's limit: there are 32768 input-slice constants. */
export const MAX_INPUT_SLICES = 32768;
/** Recovery exponents are 16-bit and 65535 would repeat exponent 0. */
export const MAX_RECOVERY_SLICES = 65535;
/** par2cmdline's default block count. */
export const DEFAULT_BLOCK_COUNT = 2000;
/**
 * Smallest slice chosen automatically (unless the file is smaller): below
 * this, the 20 bytes of checksums and 68 of packet header per slice outweigh
 * finer-grained repair.
 */
export const MIN_AUTO_SLICE_SIZE = 1024;

function roundUp4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

export function sliceCountFor(fileSizes: readonly number[], sliceSize: number): number {
  let count = 0;
  for (const size of fileSizes) count += Math.ceil(size / sliceSize);
  return count;
}

/**
 * The slice size: `sliceSize` as given (a multiple of 4), or the smallest
 * multiple of 4 that keeps the set within `blockCount` slices (default
 * 2000), at least 1 KiB unless the largest file is smaller, and grown until
 * the set has at most 32768 slices.
 */
export function chooseSliceSize(fileSizes: readonly number[], options: { sliceSize?: number; blockCount?: number; minSliceSize?: number } = {}): number {
  const largest = Math.max(0, ...fileSizes);
  if (largest === 0) return 4;
  if (options.sliceSize !== undefined) {
    if (!Number.isInteger(options.sliceSize) || options.sliceSize <= 0 || options.sliceSize % 4 !== 0) {
      throw new RangeError(`block size ${options.sliceSize} must be a positive multiple of 4`);
    }
    if (sliceCountFor(fileSizes, options.sliceSize) > MAX_INPUT_SLICES) {
      throw new RangeError(`block size ${options.sliceSize} gives more than ${MAX_INPUT_SLICES} source blocks; choose a larger one`);
    }
    return options.sliceSize;
  }
  const blockCount = options.blockCount ?? DEFAULT_BLOCK_COUNT;
  if (!Number.isInteger(blockCount) || blockCount <= 0 || blockCount > MAX_INPUT_SLICES) {
    throw new RangeError(`block count ${blockCount} must be between 1 and ${MAX_INPUT_SLICES}`);
  }
  const nonEmpty = fileSizes.filter((s) => s > 0).length;
  if (nonEmpty > MAX_INPUT_SLICES) throw new RangeError(`${nonEmpty} files need at least one slice each; PAR2 allows ${MAX_INPUT_SLICES} slices per set`);
  const floor = Math.min(options.minSliceSize ?? (options.blockCount === undefined ? MIN_AUTO_SLICE_SIZE : 4), roundUp4(largest));
  // Every non-empty file needs a slice of its own, whatever the block count says.
  const limit = Math.max(blockCount, nonEmpty);
  // The slice count only falls as the size grows: binary search over multiples of 4.
  let low = Math.max(1, floor / 4);
  let high = Math.max(low, roundUp4(largest) / 4);
  while (low < high) {
    const middle = Math.floor((low + high) / 2);
    if (sliceCountFor(fileSizes, middle * 4) <= limit) high = middle;
    else low = middle + 1;
  }
  return low * 4;
}

/** par2cmdline's rounding: (slices · percent + 50) / 100, at least one when any redundancy is asked for. */
export function recoveryCountFor(inputSlices: number, percent: number): number {
  if (!(percent >= 0)) throw new RangeError(`redundancy ${percent} must be a percentage ≥ 0`);
  const count = Math.floor((inputSlices * percent + 50) / 100);
  return Math.min(MAX_RECOVERY_SLICES, percent > 0 ? Math.max(1, count) : 0);
}

/**
 * How many recovery slices each vol file holds: without a file count, 1, 2,
 * 4, … with the last taking the rest (par2cmdline's default, so a small
 * repair needs only a small download); with one, as even as possible.
 */
export function recoveryFileSizes(recoveryCount: number, fileCount?: number): number[] {
  if (recoveryCount === 0) return [];
  if (fileCount !== undefined) {
    if (!Number.isInteger(fileCount) || fileCount <= 0) throw new RangeError(`recovery file count ${fileCount} must be a positive integer`);
    const files = Math.min(fileCount, recoveryCount);
    return Array.from({ length: files }, (_, i) => Math.floor(recoveryCount / files) + (i < recoveryCount % files ? 1 : 0));
  }
  const sizes: number[] = [];
  let left = recoveryCount;
  for (let next = 1; left > 0; next *= 2) {
    const size = left - next < next * 2 ? left : next;
    sizes.push(size);
    left -= size;
  }
  return sizes;
}

/** `base.volFIRST+COUNT.par2`, zero-padded as par2cmdline does so names sort. */
export function volumeNames(base: string, firstExponent: number, sizes: readonly number[]): string[] {
  const last = firstExponent + sizes.reduce((a, b) => a + b, 0);
  const exponentWidth = Math.max(2, String(last).length);
  const countWidth = Math.max(2, String(Math.max(0, ...sizes)).length);
  let exponent = firstExponent;
  return sizes.map((size) => {
    const name = `${base}.vol${String(exponent).padStart(exponentWidth, "0")}+${String(size).padStart(countWidth, "0")}.par2`;
    exponent += size;
    return name;
  });
}
