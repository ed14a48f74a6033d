/**
 * Repairs the files of a recovery set: solves for the missing slices over
 * GF(2^16) and writes each damaged file anew (a copy of what is left, the
 * rebuilt slices written in, truncated to its length, fsynced, renamed over
 * the damaged one). With m slices missing and m recovery slices e_1..e_m:
 *   S_r = R_r + Σ_known c_i^e_r · D_i          (one pass over the intact data)
 *   D_missing = A⁻¹ · S,  A[r][j] = c_j^e_r    (m × m, small)
 */
import { chmodSync, closeSync, copyFileSync, existsSync, fsyncSync, ftruncateSync, openSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fsyncDirectory } from "../fs/atomic.ts";
import { fsPath } from "../fs/byte-names.ts";
import { copyReadable, isUnreadableData } from "../fs/salvage-read.ts";
import { gfInvertMatrix, inputConstantLogs, recoveryCoefficient } from "./gf16.ts";
import type { KernelName } from "./kernel.ts";
import { equalBytes, md5 } from "./packets.ts";
import type { SliceSource } from "./slice-accumulator.ts";
import { multiplySlices } from "./slice-multiply.ts";
import { verifyRecoverySet, type SetCheck, type VerifyOptions } from "./verify.ts";

export interface RepairOptions extends VerifyOptions {
  readonly kernel?: KernelName | "auto";
  readonly threads?: number;
}

export interface RepairResult {
  /** The check before repair. */
  readonly before: SetCheck;
  /** Files rewritten. */
  readonly repaired: readonly string[];
  /** Why repair was impossible, when it was. */
  readonly failure?: string;
}

export async function repairRecoverySet(setPath: string, options: RepairOptions = {}): Promise<RepairResult> {
  return repairChecked(await verifyRecoverySet(setPath, options), options);
}

export async function repairChecked(before: SetCheck, options: RepairOptions = {}): Promise<RepairResult> {
  const { set } = before;
  const damaged = before.files.filter((file) => file.status !== "intact");
  if (damaged.length === 0) return { before, repaired: [] };
  if (!before.repairable) {
    return { before, repaired: [], failure: `${before.badSlices} slices are damaged but only ${before.recoveryAvailable} recovery slices are intact; ${before.badSlices - before.recoveryAvailable} more are needed` };
  }
  const sliceSize = set.sliceSize;
  const constantLogs = inputConstantLogs(set.inputSlices);
  const missing: number[] = [];
  const known: SliceSource[] = [];
  const knownIndex: number[] = [];
  set.entries.forEach((entry, fileIndex) => {
    const check = before.files[fileIndex];
    const bad = new Set(check.badSlices);
    for (let k = 0; k < entry.checksums.length; k++) {
      const global = entry.firstSlice + k;
      if (bad.has(k)) missing.push(global);
      else {
        known.push({ path: check.path, offset: k * sliceSize, length: Math.min(sliceSize, entry.description.length - k * sliceSize) });
        knownIndex.push(global);
      }
    }
  });

  const m = missing.length;
  let rebuilt: Uint8Array[] = [];
  if (m > 0) {
    const chosen = chooseRecovery(set.recovery.map((r) => r.exponent), missing, constantLogs);
    if (!chosen) return { before, repaired: [], failure: "no invertible choice of recovery slices (a known PAR2 limitation); more recovery slices are needed" };
    const recoveryUsed = chosen.exponents.map((exponent) => set.recovery.find((r) => r.exponent === exponent)!);
    // S_r: the recovery slice plus the intact data's contribution.
    const syndromes = await multiplySlices({
      sliceSize,
      outputCount: m,
      inputs: [...recoveryUsed.map((r) => ({ path: r.path, offset: r.offset, length: sliceSize })), ...known],
      coefficient: (output, input) =>
        input < m ? (input === output ? 1 : 0) : recoveryCoefficient(constantLogs[knownIndex[input - m]], chosen.exponents[output]),
      kernel: options.kernel,
      threads: options.threads,
      signal: options.signal,
    });
    rebuilt = await multiplySlices({
      sliceSize,
      outputCount: m,
      inputs: syndromes.map((bytes) => ({ bytes, offset: 0, length: sliceSize })),
      coefficient: (output, input) => chosen.inverse[output * m + input],
      kernel: options.kernel,
      signal: options.signal,
    });
  }

  const rebuiltBySlice = new Map(missing.map((global, j) => [global, rebuilt[j]]));
  const repaired: string[] = [];
  for (const [fileIndex, entry] of set.entries.entries()) {
    const check = before.files[fileIndex];
    if (check.status === "intact") continue;
    for (const k of check.badSlices) {
      const slice = rebuiltBySlice.get(entry.firstSlice + k)!;
      if (!equalBytes(md5(slice), entry.checksums[k].md5)) {
        return { before, repaired, failure: `rebuilt slice ${k} of ${entry.description.name} does not match its checksum; the recovery data is damaged` };
      }
    }
    writeRepairedFile(check.path, entry.description.length, sliceSize, check.badSlices.map((k) => ({ index: k, bytes: rebuiltBySlice.get(entry.firstSlice + k)! })));
    repaired.push(check.path);
  }
  return { before, repaired };
}

/** m recovery exponents whose matrix is invertible, trying the lowest first. */
function chooseRecovery(available: readonly number[], missing: readonly number[], constantLogs: Uint32Array): { exponents: number[]; inverse: Uint16Array } | undefined {
  const m = missing.length;
  for (let start = 0; start + m <= available.length; start++) {
    const exponents = available.slice(start, start + m);
    const matrix = new Uint16Array(m * m);
    for (let r = 0; r < m; r++) for (let j = 0; j < m; j++) matrix[r * m + j] = recoveryCoefficient(constantLogs[missing[j]], exponents[r]);
    const inverse = gfInvertMatrix(matrix, m);
    if (inverse) return { exponents, inverse };
  }
  return undefined;
}

/**
 * The damaged file's bytes as the start of its repaired copy. Where the
 * storage refuses some (EIO), they lie in damaged slices, which the rebuilt
 * ones overwrite: what can be read is copied and the rest left as zeros.
 */
function copyWhatIsLeft(path: string, temp: string): void {
  try {
    copyFileSync(fsPath(path), fsPath(temp));
  } catch (error) {
    rmSync(fsPath(temp), { force: true });
    if (!isUnreadableData(error)) throw error;
    copyReadable(path, temp);
    chmodSync(fsPath(temp), statSync(fsPath(path)).mode & 0o7777);
  }
}

function writeRepairedFile(path: string, length: number, sliceSize: number, slices: readonly { index: number; bytes: Uint8Array }[]): void {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.repair.tmp`);
  // Blaine's data paths may stand for names that are not UTF-8 (see byte-names.ts).
  const present = existsSync(fsPath(path));
  if (present) copyWhatIsLeft(path, temp);
  const fd = openSync(fsPath(temp), present ? "r+" : "w", 0o644);
  try {
    for (const { index, bytes } of slices) {
      const position = index * sliceSize;
      const data = bytes.subarray(0, Math.min(sliceSize, length - position));
      let written = 0;
      while (written < data.length) written += writeSync(fd, data, written, data.length - written, position + written);
    }
    ftruncateSync(fd, length);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(fsPath(temp), { force: true });
    throw error;
  }
  closeSync(fd);
  renameSync(fsPath(temp), fsPath(path));
  fsyncDirectory(dirname(path));
}
