/**
 * Repairs the files of a recovery set: solves for the missing slices over
 * GF(2^16) and writes each damaged file anew (a copy of what is left, the
 * rebuilt slices written in, truncated to its length, fsynced, renamed over
 * the damaged one). With m slices missing and m recovery slices e_1..e_m:
 *   S_r = R_r + Σ_known c_i^e_r · D_i          (the syndromes)
 *   D_missing = A⁻¹ · S,  A[r][j] = c_j^e_r    (m × m, small)
 * computed in one pass over the intact data as A⁻¹·R + (A⁻¹·C)·D_known.
 */
import { chmodSync, closeSync, copyFileSync, existsSync, fsyncSync, ftruncateSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { crashPoint } from "../crash-point.ts";
import { fsyncDirectory } from "../fs/atomic.ts";
import { fsPath } from "../fs/byte-names.ts";
import { tempBeside } from "../fs/dead-temps.ts";
import { copyReadable, isUnreadableData } from "../fs/salvage-read.ts";
import { noFTL } from "bun:jsc";
import { gfInvertMatrix, gfInvertPowerMatrix, gfMultiply, gfTimesRecoveryMatrix, inputConstantLogs, recoveryCoefficient } from "./gf16.ts";
import type { KernelName } from "./kernel.ts";
import { equalBytes } from "./packets.ts";
import { SCRATCH_READ } from "./scratch.ts";
import { readAt } from "./read-at.ts";
import type { SliceSource } from "./slice-accumulator.ts";
import { multiplySlices } from "./slice-multiply.ts";
import { verifyRecoverySet, type SetCheck, type VerifyOptions } from "./verify.ts";

export interface RepairOptions extends VerifyOptions {
  readonly kernel?: KernelName | "auto";
  readonly threads?: number;
  /** This thread computes a share of the products (see MultiplyOptions.shareCallingThread). */
  readonly shareCallingThread?: boolean;
  /** Bytes the computation may hold (par2cmdline's -m); default slice-multiply's DEFAULT_MEMORY. */
  readonly memory?: number;
  /** Input bytes through the solver so far, for a progress display. */
  readonly onProgress?: (bytes: number) => void;
}

export interface RepairResult {
  /** The check before repair. */
  readonly before: SetCheck;
  /** Files rewritten. */
  readonly repaired: readonly string[];
  /** Why repair was impossible, when it was. */
  readonly failure?: string;
  /** Temps that repairs killed with SIGKILL left beside the damaged files, removed. */
  readonly deadTempsRemoved?: number;
}

/**
 * Most GF products (missing² × intact slices, ~3 ns each in this thread) spent
 * folding the inverse into the coefficients: beyond it (thousands of missing
 * slices) the syndromes are computed first and the inverse applied after.
 */
const FOLDED_INVERSE_LIMIT = 300_000_000;

/**
 * The matrix work (choosing the recovery slices, inverting, folding the
 * inverse in: millions of GF products in JavaScript) runs just before the
 * products start, and JSC's top tier (FTL) would compile it then: its
 * compiler's memory came on top of the products' and the worker's, at the
 * process's peak (measured on a 500 MiB repair, 100 of 2000 slices: ~1.5 MB
 * of `blaine par2 repair`'s ~61 MB). The tier below (DFG) runs it in tens of
 * milliseconds all the same.
 */
for (const matrixWork of [gfInvertMatrix, gfInvertPowerMatrix, gfTimesRecoveryMatrix, recoveryCoefficient, gfMultiply]) noFTL(matrixWork);

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
  // Slices found by content in other files are known data, and are copied into their place.
  const foundAt = new Map(before.found.map((slice) => [slice.index, slice]));
  const copies: { fileIndex: number; position: number; source: SliceSource }[] = [];
  set.entries.forEach((entry, fileIndex) => {
    const check = before.files[fileIndex];
    const bad = new Set(check.badSlices);
    for (let k = 0; k < entry.checksums.length; k++) {
      const global = entry.firstSlice + k;
      const length = Math.min(sliceSize, entry.description.length - k * sliceSize);
      const elsewhere = foundAt.get(global);
      if (bad.has(k) && !elsewhere) missing.push(global);
      else {
        const source = elsewhere && bad.has(k) ? { path: elsewhere.path, offset: elsewhere.offset, length } : { path: check.path, offset: k * sliceSize, length };
        known.push(source);
        knownIndex.push(global);
        if (source.path !== check.path || source.offset !== k * sliceSize) copies.push({ fileIndex, position: k * sliceSize, source });
      }
    }
  });

  const m = missing.length;
  const chosen = m > 0 ? chooseRecovery(set.recovery.map((r) => r.exponent), missing, constantLogs) : undefined;
  if (m > 0 && !chosen) return { before, repaired: [], failure: "no invertible choice of recovery slices (a known PAR2 limitation); more recovery slices are needed" };

  // Each damaged file is rebuilt in a temp beside it (a copy of what is left); the rebuilt slices
  // are written in range by range, so no whole slice needs to be held, and checked against their
  // MD5s before any file is replaced.
  const targets = new Map<number, RepairTarget>();
  const rebuiltAt: { target: RepairTarget; position: number; end: number; hash: Bun.CryptoHasher; expected: Uint8Array; label: string }[] = [];
  try {
    for (const [fileIndex, entry] of set.entries.entries()) {
      const check = before.files[fileIndex];
      if (check.status === "intact") continue;
      targets.set(fileIndex, openRepairTarget(check.path, entry.description.length));
    }
    for (const global of missing) {
      const fileIndex = set.entries.findIndex((entry) => global >= entry.firstSlice && global < entry.firstSlice + entry.checksums.length);
      const entry = set.entries[fileIndex];
      const k = global - entry.firstSlice;
      const position = k * sliceSize;
      rebuiltAt.push({
        target: targets.get(fileIndex)!, position, end: entry.description.length, hash: new Bun.CryptoHasher("md5"),
        expected: entry.checksums[k].md5, label: `slice ${k} of ${entry.description.name}`,
      });
    }
    if (chosen) {
      const recoveryUsed = chosen.exponents.map((exponent) => set.recovery.find((r) => r.exponent === exponent)!);
      const inputs = [...recoveryUsed.map((r) => ({ path: r.path, offset: r.offset, length: sliceSize })), ...known];
      const common = { sliceSize, outputCount: m, inputs, kernel: options.kernel, threads: options.threads, shareCallingThread: options.shareCallingThread, signal: options.signal, memory: options.memory, onProgress: options.onProgress };
      const place = (start: number, rebuilt: readonly Uint8Array[]) => {
        rebuilt.forEach((bytes, j) => {
          const slice = rebuiltAt[j];
          slice.hash.update(bytes);
          const at = slice.position + start;
          const kept = Math.max(0, Math.min(bytes.length, slice.end - at));
          if (kept > 0) slice.target.writeAt(bytes.subarray(0, kept), at);
        });
      };
      const knownLogs = Uint32Array.from(knownIndex, (index) => constantLogs[index]);
      if (m * m * known.length <= FOLDED_INVERSE_LIMIT) {
        // D_missing = A⁻¹·R + (A⁻¹·C)·D_known: the inverse folded into the coefficients, one pass.
        const folded = gfTimesRecoveryMatrix(chosen.inverse, chosen.exponents, knownLogs);
        const knownCount = known.length;
        await multiplySlices({
          ...common,
          coefficient: (output, input) => (input < m ? chosen.inverse[output * m + input] : folded[output * knownCount + input - m]),
          onRange: place,
        });
      } else {
        // Too many missing slices to fold the inverse in cheaply: S_r = R_r + Σ_known c_i^e_r · D_i range
        // by range, then the missing slices' same range = A⁻¹ · S, in this thread (the workers are busy with S).
        await multiplySlices({
          ...common,
          coefficient: (output, input) => (input < m ? (input === output ? 1 : 0) : recoveryCoefficient(knownLogs[input - m], chosen.exponents[output])),
          onRange: (start, syndromes) =>
            multiplySlices({
              sliceSize: syndromes[0].length,
              outputCount: m,
              inputs: syndromes.map((bytes) => ({ bytes, offset: 0, length: bytes.length })),
              coefficient: (output, input) => chosen.inverse[output * m + input],
              kernel: options.kernel,
              inThread: true,
              signal: options.signal,
              memory: options.memory,
              onRange: (within, rebuilt) => place(start + within, rebuilt),
            }).then(() => undefined),
        });
      }
    }
    // Copied a piece at a time: a slice of a large file's set is tens of megabytes.
    const bytes = new Uint8Array(Math.min(sliceSize, SCRATCH_READ));
    for (const copy of copies) {
      const fd = openSync(fsPath(copy.source.path!), "r");
      try {
        for (let done = 0; done < copy.source.length; ) {
          const step = Math.min(bytes.length, copy.source.length - done);
          if (readAt(fd, bytes, step, copy.source.offset + done) < step) throw new Error(`${copy.source.path} changed while repairing: shorter than before`);
          targets.get(copy.fileIndex)!.writeAt(bytes.subarray(0, step), copy.position + done);
          done += step;
        }
      } finally {
        closeSync(fd);
      }
    }
    for (const place of rebuiltAt) {
      if (!equalBytes(new Uint8Array(place.hash.digest().buffer), place.expected)) {
        for (const target of targets.values()) target.abort();
        return { before, repaired: [], failure: `rebuilt ${place.label} does not match its checksum; the recovery data is damaged`, deadTempsRemoved: deadTempsOf(targets) };
      }
    }
  } catch (error) {
    for (const target of targets.values()) target.abort();
    throw error;
  }
  const repaired: string[] = [];
  for (const target of targets.values()) {
    target.commit();
    repaired.push(target.path);
  }
  return { before, repaired, deadTempsRemoved: deadTempsOf(targets) };
}

function deadTempsOf(targets: ReadonlyMap<number, RepairTarget>): number {
  let removed = 0;
  for (const target of targets.values()) removed += target.deadTempsRemoved;
  return removed;
}

/** m recovery exponents whose matrix is invertible, trying the lowest first. */
function chooseRecovery(available: readonly number[], missing: readonly number[], constantLogs: Uint32Array): { exponents: number[]; inverse: Uint16Array } | undefined {
  const m = missing.length;
  // Consecutive exponents (no recovery slice lost among the first m): the matrix is never singular, and its
  // inverse has a closed form; otherwise windows of them are eliminated until one inverts.
  const first = [...available].sort((a, b) => a - b).slice(0, m);
  if (first.length === m && first.every((exponent, r) => exponent === first[0] + r)) {
    return { exponents: first, inverse: gfInvertPowerMatrix(Array.from(missing, (index) => constantLogs[index]), first[0]) };
  }
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

interface RepairTarget {
  readonly path: string;
  /** Temps of killed repairs of this file removed before this one began. */
  readonly deadTempsRemoved: number;
  writeAt(bytes: Uint8Array, position: number): void;
  /** Cuts to the set's length, fsyncs and renames over the damaged file. */
  commit(): void;
  abort(): void;
}

/**
 * The temp a damaged or missing file is rebuilt in: a copy of what is left
 * (or a new file, its directory made again when it went too).
 */
function openRepairTarget(path: string, length: number): RepairTarget {
  const directory = dirname(path);
  // A repair killed with SIGKILL left its temp beside the file (as large as it): nothing else removes it.
  const { path: temp, dead } = tempBeside(path, "repair-");
  // Blaine's data paths may stand for names that are not UTF-8 (see byte-names.ts).
  const present = existsSync(fsPath(path));
  if (!present) mkdirSync(fsPath(directory), { recursive: true });
  if (present) copyWhatIsLeft(path, temp);
  const fd = openSync(fsPath(temp), present ? "r+" : "w", 0o644);
  let open = true;
  const abort = () => {
    if (open) closeSync(fd);
    open = false;
    rmSync(fsPath(temp), { force: true });
  };
  return {
    path,
    deadTempsRemoved: dead.removed,
    writeAt(bytes, position) {
      let written = 0;
      while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written, position + written);
    },
    commit() {
      try {
        ftruncateSync(fd, length);
        fsyncSync(fd);
      } catch (error) {
        abort();
        throw error;
      }
      closeSync(fd);
      open = false;
      crashPoint("par2-repair-before-rename");
      renameSync(fsPath(temp), fsPath(path));
      fsyncDirectory(directory);
    },
    abort,
  };
}
