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
 * par2cmdline's `-rk/-rm/-rg SIZE`: as many recovery slices as fit in SIZE
 * bytes of vol files, counting per vol file 21 bytes of checksums per input
 * slice and per recovery slice its packet (the slice and 70 bytes). The
 * number of vol files depends on the count, so par2cmdline estimates it
 * from 15 files first; at least one slice. Not capped: a target needing
 * more than PAR2's 65535 recovery slices is refused by create, as
 * par2cmdline refuses it ("Too many recovery blocks requested.").
 */
export function recoveryCountForBytes(targetBytes: number, inputSlices: number, sliceSize: number, files: RecoveryFileOptions = {}): number {
  if (!Number.isInteger(targetBytes) || targetBytes <= 0) throw new RangeError(`recovery data size ${targetBytes} must be a positive number of bytes`);
  const perFile = inputSlices * 21;
  const packetBytes = sliceSize + 70;
  const fitting = (fileCount: number) => (fileCount * perFile > targetBytes ? 1 : Math.floor((targetBytes - fileCount * perFile) / packetBytes));
  const fileCount = files.fileCount ?? recoveryFileSizes(fitting(15), files).length;
  return fitting(fileCount);
}

/**
 * How recovery slices are spread over vol files, par2cmdline's three
 * schemes: "variable" (default) doubles the slices per file, "uniform" (-u)
 * gives every file the same, "limited" (-l) caps a file at what the largest
 * source file needs and doubles below that.
 */
export type RecoveryFileScheme = "variable" | "uniform" | "limited";

export interface RecoveryFileOptions {
  readonly scheme?: RecoveryFileScheme;
  /** -n: how many vol files (variable and uniform only); default one per bit of the recovery count. */
  readonly fileCount?: number;
  /** Slices of the largest source file (the cap of the limited scheme). */
  readonly largestFileSlices?: number;
}

/** Bits in n: par2cmdline's default file count, about log2 of the recovery count, so the number of files stays small. */
function bitLength(n: number): number {
  let bits = 0;
  for (let left = n; left > 0; left = Math.floor(left / 2)) bits++;
  return bits;
}

/**
 * How many recovery slices each vol file holds, exactly as par2cmdline 0.8.1
 * lays them out (so the same options give the same vol file names):
 * - variable: the first file holds the smallest power of two that lets the
 *   files, doubling, hold everything; the last ones hold what is left, which
 *   can be nothing (par2cmdline still writes such a file, `volN+0`);
 * - uniform: count / files each, the first ones one more;
 * - limited: files of the largest source file's slice count at the top,
 *   1, 2, 4, … below.
 */
export function recoveryFileSizes(recoveryCount: number, options: RecoveryFileOptions = {}): number[] {
  const scheme = options.scheme ?? "variable";
  if (!Number.isInteger(recoveryCount) || recoveryCount <= 0) return [];
  if (scheme === "limited") {
    if (options.fileCount !== undefined) throw new RangeError("a number of recovery files (-n) cannot be combined with limited file sizes (-l)");
    const largest = options.largestFileSlices;
    if (largest === undefined || !Number.isInteger(largest) || largest <= 0) throw new RangeError("limited recovery file sizes need the largest source file's slice count");
    const whole = Math.max(0, Math.floor(recoveryCount / largest) - 1);
    const files = whole + bitLength(recoveryCount - whole * largest);
    const sizes = new Array<number>(files).fill(0);
    let top = files;
    let left = recoveryCount;
    while (left >= 2 * largest && top > 0) {
      sizes[--top] = largest;
      left -= largest;
    }
    for (let file = 0, next = 1; file < top; file++, next *= 2) {
      sizes[file] = Math.min(next, left);
      left -= sizes[file];
    }
    return sizes;
  }
  const files = options.fileCount ?? bitLength(recoveryCount);
  if (!Number.isInteger(files) || files <= 0) throw new RangeError(`recovery file count ${files} must be a positive integer`);
  if (files > recoveryCount) throw new RangeError(`${files} recovery files for ${recoveryCount} recovery blocks: there cannot be more files than blocks`);
  if (scheme === "uniform") {
    return Array.from({ length: files }, (_, i) => Math.floor(recoveryCount / files) + (i < recoveryCount % files ? 1 : 0));
  }
  let first = 1;
  // 2^files - 1 slices fit when the first file holds one; double until everything fits.
  for (let fits = 2 ** files - 1; fits < recoveryCount; fits *= 2) first *= 2;
  const sizes: number[] = [];
  let left = recoveryCount;
  for (let file = 0, next = first; file < files; file++, next *= 2) {
    const size = Math.min(next, left);
    sizes.push(size);
    left -= size;
  }
  return sizes;
}

/**
 * `base.volFIRST+COUNT.par2` as par2cmdline names them: FIRST zero-padded to
 * the digits of the highest exponent (first + count, the index file's
 * place), COUNT to the digits of the largest count, each at least one digit,
 * so a set's names sort.
 */
export function volumeNames(base: string, firstExponent: number, sizes: readonly number[]): string[] {
  const last = firstExponent + sizes.reduce((a, b) => a + b, 0);
  const exponentWidth = String(last).length;
  const countWidth = String(Math.max(0, ...sizes)).length;
  let exponent = firstExponent;
  return sizes.map((size) => {
    const name = `${base}.vol${String(exponent).padStart(exponentWidth, "0")}+${String(size).padStart(countWidth, "0")}.par2`;
    exponent += size;
    return name;
  });
}
