/**
 * Accumulates outputs[o] ^= Σ coefficient(o, k) · input[k] over one byte range
 * ("part") of every slice, in a kernel's memory: the shared core of encoding
 * (outputs are recovery slices) and repair (outputs are the missing slices).
 * Used directly for small jobs and inside each worker thread for large ones.
 */
import { closeSync, openSync } from "node:fs";
import { fsPath } from "../fs/byte-names.ts";
import type { Kernel } from "./kernel.ts";
import { readAt } from "./read-at.ts";

/** One input slice: a file range (read by whoever accumulates) or bytes; shorter than the slice means zero padding. */
export interface SliceSource {
  readonly path?: string;
  readonly bytes?: Uint8Array;
  readonly offset: number;
  readonly length: number;
}

export interface AccumulatorShape {
  /** Where this part starts within a slice, and its length (a multiple of 32). */
  readonly partOffset: number;
  readonly partLength: number;
  readonly outputs: number;
  /** Most inputs per batch. */
  readonly batchCapacity: number;
}

/**
 * Bytes of each output processed against every input of a batch before
 * moving on: the output chunk stays in L1 and the batch's prepared input
 * chunks (twice as long) in L2; measured a little faster than 4 or 8 KiB.
 */
const CHUNK = 2048;

/** Most inputs per batch, for both ways of multiplying (slice-multiply, shared-multiply): enough to amortise a round trip and keep an output chunk in L1 across many inputs. */
export const MAX_BATCH = 48;

export class SliceAccumulator {
  readonly #kernel: Kernel;
  readonly #shape: AccumulatorShape;
  readonly #inputsAt: number;
  readonly #outputsAt: number;
  readonly #files = new Map<string, number>();

  constructor(kernel: Kernel, shape: AccumulatorShape) {
    if (shape.partLength % 32 !== 0) throw new RangeError(`part length ${shape.partLength} is not a multiple of 32`);
    this.#kernel = kernel;
    this.#shape = shape;
    const tablesEnd = shape.outputs * shape.batchCapacity * kernel.tableBytes;
    this.#inputsAt = Math.ceil(tablesEnd / 64) * 64;
    this.#outputsAt = this.#inputsAt + shape.batchCapacity * shape.partLength * kernel.inputScale;
    const total = this.#outputsAt + shape.outputs * shape.partLength;
    kernel.reserve(total);
    kernel.bytes().fill(0, this.#outputsAt, total);
  }

  /** coefficients: outputs × sources.length, row by output. */
  addBatch(sources: readonly SliceSource[], coefficients: Uint16Array): void {
    const { partOffset, partLength, outputs } = this.#shape;
    const count = sources.length;
    if (count === 0) return;
    if (count > this.#shape.batchCapacity) throw new RangeError(`batch of ${count} exceeds capacity ${this.#shape.batchCapacity}`);
    const kernel = this.#kernel;
    const memory = kernel.bytes();
    const prepared = partLength * kernel.inputScale;
    // The words are read into the end of the inputs' room and prepared from there in place.
    const wordsAt = this.#inputsAt + count * (prepared - partLength);
    for (let k = 0; k < count; k++) {
      const slot = wordsAt + k * partLength;
      const wanted = Math.max(0, Math.min(partLength, sources[k].length - partOffset));
      const got = wanted > 0 ? this.#read(sources[k], memory, slot, wanted) : 0;
      memory.fill(0, slot + got, slot + partLength);
    }
    kernel.prepare(wordsAt, this.#inputsAt, count * partLength);
    kernel.writeTables(coefficients, 0);
    const tableBytes = kernel.tableBytes;
    for (let chunk = 0; chunk < partLength; chunk += CHUNK) {
      const length = Math.min(CHUNK, partLength - chunk);
      for (let output = 0; output < outputs; output++) {
        kernel.mulAddBatch(
          this.#inputsAt + chunk * kernel.inputScale, prepared, count,
          this.#outputsAt + output * partLength + chunk, length,
          output * count * tableBytes, tableBytes,
        );
      }
    }
  }

  /**
   * The outputs' parts, outputs × partLength bytes, as PAR2 words: copied
   * into `into` when it is given and large enough (a buffer reused range
   * after range, so memory does not churn), else into a new array.
   */
  result(into?: Uint8Array): Uint8Array {
    const total = this.#shape.outputs * this.#shape.partLength;
    this.#kernel.join(this.#outputsAt, this.#outputsAt, total);
    const parts = this.#kernel.bytes().subarray(this.#outputsAt, this.#outputsAt + total);
    if (!into || into.length < total) return parts.slice();
    into.set(parts);
    return into.subarray(0, total);
  }

  close(): void {
    for (const fd of this.#files.values()) closeSync(fd);
    this.#files.clear();
  }

  /** Reads the source's bytes of this part into `memory` at `at` (no view per read: see readAt). */
  #read(source: SliceSource, memory: Uint8Array, at: number, wanted: number): number {
    const start = source.offset + this.#shape.partOffset;
    if (source.bytes) {
      const part = source.bytes.subarray(start, start + wanted);
      memory.set(part, at);
      return part.length;
    }
    if (!source.path) throw new Error("slice source has neither path nor bytes");
    let fd = this.#files.get(source.path);
    if (fd === undefined) {
      fd = openSync(fsPath(source.path), "r");
      this.#files.set(source.path, fd);
    }
    // A file shorter than its slice reads as zeros (the caller fills them in).
    return readAt(fd, memory, wanted, start, at);
  }
}
