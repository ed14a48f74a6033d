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
 *
 * n³ products whatever is done, so each costs one table lookup: the pivot
 * row is scaled once and kept as the logs of its non-zero entries (the
 * columns left of the pivot are the identity's by then, and the inverse's
 * columns of rows not yet pivoted are zeros), and every other row takes
 * one antilog per entry of that list. The plain element-by-element
 * elimination took 115 s for the 2000 × 2000 of a repair of 2000 lost
 * slices (par2cmdline: 17 s).
 */
export function gfInvertMatrix(matrix: Uint16Array, n: number): Uint16Array | undefined {
  if (!built) buildTables();
  const width = 2 * n;
  // [matrix | identity], row by row.
  const work = new Uint16Array(n * width);
  for (let row = 0; row < n; row++) {
    work.set(matrix.subarray(row * n, row * n + n), row * width);
    work[row * width + n + row] = 1;
  }
  const spare = new Uint16Array(width);
  const columns = new Int32Array(width);
  const logs = new Int32Array(width);
  for (let column = 0; column < n; column++) {
    let pivot = column;
    while (pivot < n && work[pivot * width + column] === 0) pivot++;
    if (pivot === n) return undefined;
    const at = column * width;
    if (pivot !== column) {
      spare.set(work.subarray(pivot * width, pivot * width + width));
      work.copyWithin(pivot * width, at, at + width);
      work.set(spare, at);
    }
    // The pivot row divided by its pivot, and the logs of its non-zero entries.
    const scale = GF_ORDER - log[work[at + column]];
    let count = 0;
    for (let k = column; k < width; k++) {
      const value = work[at + k];
      if (value === 0) continue;
      let product = log[value] + scale;
      if (product >= GF_ORDER) product -= GF_ORDER;
      work[at + k] = antilog[product];
      columns[count] = k;
      logs[count++] = product;
    }
    for (let row = 0; row < n; row++) {
      const rowAt = row * width;
      const factor = work[rowAt + column];
      if (row === column || factor === 0) continue;
      const factorLog = log[factor];
      for (let entry = 0; entry < count; entry++) work[rowAt + columns[entry]] ^= antilog[factorLog + logs[entry]];
    }
  }
  const inverse = new Uint16Array(n * n);
  for (let row = 0; row < n; row++) inverse.set(work.subarray(row * width + n, row * width + width), row * n);
  return inverse;
}

/**
 * The inverse of the recovery matrix of `xLogs.length` lost input slices
 * and as many recovery slices of consecutive exponents from `firstExponent`
 * (rows r, columns j: x_j^(firstExponent + r), x_j = 2^xLogs[j], the lost
 * slices' constants), in n² products instead of elimination's n³: it is a
 * Vandermonde matrix V with its columns scaled by x_j^firstExponent, and
 * row j of V⁻¹ is the coefficients of the Lagrange polynomial that is 1 at
 * x_j and 0 at the other x: P(t) / ((t - x_j) · P'(x_j)), P(t) = Π (t - x_k).
 * Never singular (the constants are distinct and non-zero). Every repair
 * whose recovery slices are all there takes this; 2000 lost slices: 10 ms.
 */
export function gfInvertPowerMatrix(xLogs: ArrayLike<number>, firstExponent: number): Uint16Array {
  if (!built) buildTables();
  const n = xLogs.length;
  const times = (value: number, valueLog: number) => (value === 0 ? 0 : antilog[log[value] + valueLog]);
  // P's coefficients, lowest first: multiplied by (t + x_k) one k at a time (minus is plus here).
  const master = new Uint16Array(n + 1);
  master[0] = 1;
  for (let k = 0; k < n; k++) {
    for (let i = k + 1; i >= 1; i--) master[i] = master[i - 1] ^ times(master[i], xLogs[k]);
    master[0] = times(master[0], xLogs[k]);
  }
  const inverse = new Uint16Array(n * n);
  const quotient = new Uint16Array(n);
  for (let j = 0; j < n; j++) {
    const xLog = xLogs[j];
    // P(t) / (t + x_j), by synthetic division (the remainder is 0: x_j is a root).
    quotient[n - 1] = master[n];
    for (let i = n - 1; i >= 1; i--) quotient[i - 1] = master[i] ^ times(quotient[i], xLog);
    // Its value at x_j (P'(x_j)), by Horner's rule.
    let denominator = 0;
    for (let i = n - 1; i >= 0; i--) denominator = times(denominator, xLog) ^ quotient[i];
    // Row j: the quotient divided by the denominator and by x_j^firstExponent.
    const scale = (2 * GF_ORDER - log[denominator] - ((xLog * firstExponent) % GF_ORDER)) % GF_ORDER;
    for (let r = 0; r < n; r++) inverse[j * n + r] = times(quotient[r], scale);
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
