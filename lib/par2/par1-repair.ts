/**
 * Repairs the files of a checked PAR 1.0 set: a complete copy found under
 * another name is copied into place; every other damaged or missing file is
 * rebuilt from the complete ones and as many recovery volumes, a byte range
 * at a time within a memory budget. Each file is written to a temp beside
 * its place, checked against the set's MD5, and renamed over only when
 * every rebuilt file checks out (a failed repair changes nothing).
 */
import { closeSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { crashPoint } from "../crash-point.ts";
import { multiplyAccumulate, solvePar1 } from "./par1-codec.ts";
import type { Par1Check, Par1FileCheck } from "./par1-set.ts";
import { readAt } from "./read-at.ts";
import { removeDeadTemps } from "../fs/dead-temps.ts";
import { PendingFile, pendingTempPrefix } from "./write-set.ts";
import { equalBytes } from "./packets.ts";

/** par2cmdline's default bound is half the memory; Blaine's engine keeps to a fixed budget. */
const DEFAULT_MEMORY = 64 * 1024 * 1024;
const MIN_RANGE = 64 * 1024;

export interface Par1RepairResult {
  /** The files written, where they belong. */
  readonly repaired: readonly string[];
  /** Set when a rebuilt file did not check out (nothing was replaced then). */
  readonly failure?: string;
  /** Temps that repairs killed with SIGKILL left beside these files, removed. */
  readonly deadTempsRemoved?: number;
}

interface Output {
  readonly check: Par1FileCheck;
  readonly pending: PendingFile;
  readonly hasher: Bun.CryptoHasher;
}

export function repairPar1(check: Par1Check, options: { memory?: number } = {}): Par1RepairResult {
  const { set } = check;
  const incomplete = check.files.filter((file) => file.status !== "found");
  if (incomplete.length === 0) return { repaired: [] };
  if (!check.repairable) throw new RangeError(`${set.setPath}: ${check.needed} files need rebuilding and only ${set.volumes.length} recovery volumes are intact`);
  const missing: number[] = [];
  const present: number[] = [];
  check.files.forEach((file, index) => (file.source === undefined ? missing : present).push(index));
  const solution = missing.length > 0 ? solvePar1(missing, present, set.volumes.map((volume) => volume.volume)) : { volumes: [], coefficients: [] };
  if (!solution) {
    return { repaired: [], failure: `the ${set.volumes.length} recovery volumes cannot rebuild these ${missing.length} files together (PAR 1.0's matrix is singular for them)` };
  }
  let deadTempsRemoved = 0;
  const outputs: Output[] = incomplete.map((file) => {
    mkdirSync(dirname(file.path), { recursive: true });
    // A repair killed with SIGKILL left its temp beside the file: nothing else removes it.
    deadTempsRemoved += removeDeadTemps(dirname(file.path), pendingTempPrefix(file.path)).removed;
    return { check: file, pending: new PendingFile(file.path), hasher: new Bun.CryptoHasher("md5") };
  });
  const inputs: { path: string; offset: number; length: number }[] = [
    ...present.map((index) => ({ path: check.files[index].source!, offset: 0, length: check.files[index].entry.size })),
    ...solution.volumes.map((number) => {
      const volume = set.volumes.find((candidate) => candidate.volume === number)!;
      return { path: volume.path, offset: volume.dataOffset, length: set.blockSize };
    }),
  ];
  const fds = new Map<string, number>();
  try {
    for (const input of inputs) if (!fds.has(input.path)) fds.set(input.path, openSync(input.path, "r"));
    copyRenamed(outputs.filter((output) => output.check.status === "renamed"), fds, options.memory ?? DEFAULT_MEMORY);
    rebuild(outputs.filter((output) => output.check.source === undefined), inputs, solution.coefficients, set.blockSize, fds, options.memory ?? DEFAULT_MEMORY);
    const wrong = outputs.find((output) => output.pending.bytes !== output.check.entry.size || !equalBytes(new Uint8Array(output.hasher.digest().buffer), output.check.entry.md5));
    if (wrong) {
      for (const output of outputs) output.pending.abort();
      return { repaired: [], failure: `the rebuilt ${wrong.check.entry.name} does not match the set's MD5`, deadTempsRemoved };
    }
    crashPoint("par1-repair-before-commit");
    for (const output of outputs) output.pending.commit();
    return { repaired: outputs.map((output) => output.check.path), deadTempsRemoved };
  } catch (error) {
    for (const output of outputs) output.pending.abort();
    throw error;
  } finally {
    for (const fd of fds.values()) closeSync(fd);
  }
}

/** A renamed file's complete content, copied into place. */
function copyRenamed(outputs: readonly Output[], fds: Map<string, number>, memory: number): void {
  const buffer = new Uint8Array(Math.max(MIN_RANGE, Math.min(memory, 4 << 20)));
  for (const output of outputs) {
    const source = output.check.source!;
    const fd = fds.get(source) ?? openSync(source, "r");
    fds.set(source, fd);
    for (let offset = 0; offset < output.check.entry.size; ) {
      const got = readAt(fd, buffer, Math.min(buffer.length, output.check.entry.size - offset), offset);
      if (got === 0) break;
      output.pending.write([buffer.subarray(0, got)]);
      output.hasher.update(buffer.subarray(0, got));
      offset += got;
    }
  }
}

/** Each missing file = Σ coefficient · input over the same byte range of every input, range by range. */
function rebuild(
  outputs: readonly Output[],
  inputs: readonly { path: string; offset: number; length: number }[],
  coefficients: readonly Uint8Array[],
  blockSize: number,
  fds: Map<string, number>,
  memory: number,
): void {
  if (outputs.length === 0) return;
  const range = Math.min(blockSize, Math.max(MIN_RANGE, Math.floor(memory / (outputs.length + 1))));
  const input = new Uint8Array(range);
  const sums = outputs.map(() => new Uint8Array(range));
  for (let offset = 0; offset < blockSize; offset += range) {
    const length = Math.min(range, blockSize - offset);
    for (const sum of sums) sum.fill(0, 0, length);
    inputs.forEach((source, i) => {
      // Files shorter than the block count as padded with zeros.
      const got = offset < source.length ? readAt(fds.get(source.path)!, input, Math.min(length, source.length - offset), source.offset + offset) : 0;
      input.fill(0, got, length);
      outputs.forEach((_, j) => multiplyAccumulate(sums[j].subarray(0, length), input.subarray(0, length), coefficients[j][i]));
    });
    outputs.forEach((output, j) => {
      const keep = Math.max(0, Math.min(length, output.check.entry.size - offset));
      if (keep === 0) return;
      output.pending.write([sums[j].subarray(0, keep)]);
      output.hasher.update(sums[j].subarray(0, keep));
    });
  }
}
