/**
 * Arithmetic in GF(2^16) as PAR2 2.0 defines it: polynomial 0x1100B,
 * generator 2. Products go through log/antilog tables (128 KiB each,
 * built once); the bulk multiply-accumulate over slices lives in the kernels.
 */

/** PAR2's field polynomial: x^16 + x^12 + x^3 + x + 1. */
export const GF_POLYNOMIAL = 0x1100b;
/** The order of the multiplicative group (2^16 - 1). */
export const GF_ORDER = 65535;

// Built on first use, not when the module loads: every `blaine` command
// loads this module, and most never make or check parity.
let antilog: Uint16Array;
let log: Uint32Array;
let built = false;

function buildTables(): void {
  antilog = new Uint16Array(GF_ORDER * 2);
  log = new Uint32Array(65536);
  let value = 1;
  for (let exponent = 0; exponent < GF_ORDER; exponent++) {
    antilog[exponent] = value;
    // A second copy lets a sum of two logs index the table without a modulo.
    antilog[exponent + GF_ORDER] = value;
    log[value] = exponent;
    value <<= 1;
    if (value & 0x10000) value ^= GF_POLYNOMIAL;
  }
  built = true;
}

export function gfMultiply(a: number, b: number): number {
  if (a === 0 || b === 0) return 0;
  if (!built) buildTables();
  return antilog[log[a] + log[b]];
}

export function gfDivide(a: number, b: number): number {
  if (b === 0) throw new RangeError("GF(2^16) division by zero");
  if (a === 0) return 0;
  if (!built) buildTables();
  return antilog[log[a] + GF_ORDER - log[b]];
}

/**
 * The base logs of the first `count` input-slice constants: the spec gives
 * input slice i the constant 2^n_i, where n_i is the i-th positive integer
 * sharing no factor with 65535 = 3 · 5 · 17 · 257.
 */
export function inputConstantLogs(count: number): Uint32Array {
  const logs = new Uint32Array(count);
  let candidate = 1;
  for (let index = 0; index < count; index++) {
    while (candidate % 3 === 0 || candidate % 5 === 0 || candidate % 17 === 0 || candidate % 257 === 0) candidate++;
    if (candidate >= GF_ORDER) throw new RangeError(`PAR2 allows at most 32768 input slices, asked for ${count}`);
    logs[index] = candidate++;
  }
  return logs;
}

/** The coefficient of input slice i (constant 2^logs[i]) in the recovery slice with `exponent`: (2^n_i)^exponent. */
export function recoveryCoefficient(constantLog: number, exponent: number): number {
  if (!built) buildTables();
  return antilog[(constantLog * exponent) % GF_ORDER];
}

/**
 * left × R, where R (rows × count) is the recovery coefficients of `count`
 * inputs: R[r][i] = recoveryCoefficient(constantLogs[i], exponents[r]);
 * `left` is rows × rows, the result rows × count (all row-major). Repair
 * folds the inverse into the intact data's coefficients with it, so the
 * missing slices come out of one pass over the data.
 */
export function gfTimesRecoveryMatrix(left: Uint16Array, exponents: readonly number[], constantLogs: ArrayLike<number>): Uint16Array {
  if (!built) buildTables();
  const rows = exponents.length;
  const count = constantLogs.length;
  const product = new Uint16Array(rows * count);
  const rowLogs = new Uint32Array(count);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < count; i++) rowLogs[i] = (constantLogs[i] * exponents[r]) % GF_ORDER;
    for (let j = 0; j < rows; j++) {
      const factor = left[j * rows + r];
      if (factor === 0) continue;
      const factorLog = log[factor];
      const at = j * count;
      for (let i = 0; i < count; i++) product[at + i] ^= antilog[factorLog + rowLogs[i]];
    }
  }
  return product;
}

/**
 * Inverts a square matrix over GF(2^16) (row-major, n × n) by Gauss-Jordan
 * elimination; returns undefined when it is singular (PAR2's constants make
 * that rare but not impossible, so callers try another recovery slice).
 */
export function gfInvertMatrix(matrix: Uint16Array, n: number): Uint16Array | undefined {
  const work = Uint16Array.from(matrix);
  const inverse = new Uint16Array(n * n);
  for (let i = 0; i < n; i++) inverse[i * n + i] = 1;
  for (let column = 0; column < n; column++) {
    let pivot = column;
    while (pivot < n && work[pivot * n + column] === 0) pivot++;
    if (pivot === n) return undefined;
    if (pivot !== column) {
      for (let k = 0; k < n; k++) {
        [work[pivot * n + k], work[column * n + k]] = [work[column * n + k], work[pivot * n + k]];
        [inverse[pivot * n + k], inverse[column * n + k]] = [inverse[column * n + k], inverse[pivot * n + k]];
      }
    }
    const scale = gfDivide(1, work[column * n + column]);
    for (let k = 0; k < n; k++) {
      work[column * n + k] = gfMultiply(work[column * n + k], scale);
      inverse[column * n + k] = gfMultiply(inverse[column * n + k], scale);
    }
    for (let row = 0; row < n; row++) {
      const factor = row === column ? 0 : work[row * n + column];
      if (factor === 0) continue;
      for (let k = 0; k < n; k++) {
        work[row * n + k] ^= gfMultiply(factor, work[column * n + k]);
        inverse[row * n + k] ^= gfMultiply(factor, inverse[column * n + k]);
      }
    }
  }
  return inverse;
}

/**
 * The products c·(n << 4k) for every nibble value n and nibble position k,
 * split into low and high bytes: eight 16-byte tables, the layout both
 * kernels use (the SIMD one looks them up with i8x16.swizzle).
 */
const basis = new Uint16Array(16);

/** c·2^j for j = 0..15 into `into`, by doubling: every product c·x is the XOR of those for x's set bits. */
export function writeDoublings(coefficient: number, into: Uint16Array): void {
  let value = coefficient;
  for (let bit = 0; bit < 16; bit++) {
    into[bit] = value;
    value <<= 1;
    if (value & 0x10000) value ^= GF_POLYNOMIAL;
  }
}

export function writeNibbleTables(coefficient: number, into: Uint8Array, at: number): void {
  writeDoublings(coefficient, basis);
  for (let position = 0; position < 4; position++) {
    const low = at + position * 32;
    const high = low + 16;
    into[low] = 0;
    into[high] = 0;
    // Each entry is one XOR from a smaller one: table[n] = table[n without its lowest bit] ^ basis[that bit].
    for (let nibble = 1; nibble < 16; nibble++) {
      const bit = 31 - Math.clz32(nibble & -nibble);
      const smaller = nibble & (nibble - 1);
      const product = (into[low + smaller] | (into[high + smaller] << 8)) ^ basis[position * 4 + bit];
      into[low + nibble] = product & 0xff;
      into[high + nibble] = product >>> 8;
    }
  }
}
