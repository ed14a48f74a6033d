/**
 * Slice products with the calling thread and workers in one shared
 * WebAssembly memory, for `blaine par2`, whose calling thread has nothing
 * else to do (MultiplyOptions.shareCallingThread). The calling thread reads
 * and prepares each batch of inputs and its coefficient tables once, in the
 * memory every thread reads; all threads then claim units of the batch
 * (shared-units.ts) and add into the same outputs, while the calling thread
 * prepares the next batch beside them. Against a worker per part with its
 * own accumulator (slice-multiply's other way), nothing is read, prepared
 * or tabled twice, no batch or result travels in a message, and a worker
 * loads one small module: measured on a 500 MiB repair (100 of 2000 slices
 * lost), the process's peak went from 65–68 MB to 61–63 MB at the same
 * speed, and its CPU time from ~8 s to ~6.5 s.
 */
import { closeSync, openSync } from "node:fs";
import { fsPath } from "../fs/byte-names.ts";
import { SIMD_SHAPE, simdSharedModule, type KernelExports } from "./kernel-simd.ts";
import { readAt } from "./read-at.ts";
import { claimUnits, Control, CONTROL_BYTES, CONTROL_WORDS, INPUT_SCALE, TABLE_BYTES, UNIT_BYTES, UNIT_OUTPUTS } from "./shared-units.ts";
import type { SharedWorkerReply, SharedWorkerRequest } from "./shared-worker.ts";
import { MAX_BATCH, type SliceSource } from "./slice-accumulator.ts";
import type { MultiplyOptions } from "./slice-multiply.ts";
import { withWorkers } from "./worker-pool.ts";

if (SIMD_SHAPE.tableBytes !== TABLE_BYTES || SIMD_SHAPE.inputScale !== INPUT_SCALE) throw new Error("shared-units.ts disagrees with the SIMD kernel's shape");
// Coefficients are written into the memory through a Uint16Array: the host's words must be WebAssembly's (little-endian).
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

const PAGE = 65536;

export interface SharedPlan {
  readonly batchSize: number;
  /** The slice size rounded up to the kernel's 32 bytes: what the ranges cover. */
  readonly padded: number;
  /** Bytes of every slice per range, a multiple of 32. */
  readonly rangeLength: number;
}

/**
 * How `memory` is spent: at most a third on the coefficient tables (two
 * batches' worth: one in use, one being written), the rest on two batches
 * of prepared inputs and one range of every output.
 */
export function planShared(options: Pick<MultiplyOptions, "sliceSize" | "outputCount" | "inputs">, memory: number): SharedPlan {
  const { sliceSize, outputCount, inputs } = options;
  const padded = Math.ceil(sliceSize / 32) * 32;
  const batchSize = Math.max(1, Math.min(MAX_BATCH, inputs.length, Math.floor(memory / 3 / (2 * outputCount * TABLE_BYTES))));
  const rest = memory - 2 * outputCount * batchSize * TABLE_BYTES;
  const rangeLength = Math.min(padded, Math.max(32, Math.floor(rest / (outputCount + 2 * batchSize * INPUT_SCALE) / 32) * 32));
  return { batchSize, padded, rangeLength };
}

export async function multiplyShared(
  options: MultiplyOptions,
  threads: number,
  memoryBudget: number,
  onRange: (start: number, outputs: readonly Uint8Array[]) => void | Promise<void>,
): Promise<void> {
  const { sliceSize, outputCount: outputs, inputs, signal } = options;
  const { batchSize, padded, rangeLength } = planShared(options, memoryBudget);
  const align = (n: number) => Math.ceil(n / 64) * 64;
  const tableSlot = align(outputs * batchSize * TABLE_BYTES);
  const inputSlot = align(batchSize * rangeLength * INPUT_SCALE);
  const tablesAt = [CONTROL_BYTES, CONTROL_BYTES + tableSlot];
  const inputsAt = [tablesAt[1] + tableSlot, tablesAt[1] + tableSlot + inputSlot];
  const outputsAt = inputsAt[1] + inputSlot;
  const pages = Math.ceil((outputsAt + outputs * rangeLength) / PAGE);
  const module = simdSharedModule();
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const kernel = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as KernelExports;
  const bytes = new Uint8Array(memory.buffer);
  const control = new Int32Array(memory.buffer, 0, CONTROL_WORDS);
  const groups = Math.ceil(outputs / UNIT_OUTPUTS);

  const batches: { first: number; sources: readonly SliceSource[] }[] = [];
  for (let first = 0; first < inputs.length; first += batchSize) batches.push({ first, sources: inputs.slice(first, first + batchSize) });

  const files = new Map<string, number>();
  /** Reads batch `b`'s bytes of the range into its slot, prepares them and writes its tables. */
  const load = (b: number, start: number, length: number) => {
    const batch = batches[b];
    const count = batch.sources.length;
    const slot = b % 2;
    const wordsAt = inputsAt[slot] + count * (length * INPUT_SCALE - length);
    for (let k = 0; k < count; k++) {
      const source = batch.sources[k];
      const at = wordsAt + k * length;
      const wanted = Math.max(0, Math.min(length, source.length - start));
      const got = wanted > 0 ? read(source, start, at, wanted) : 0;
      bytes.fill(0, at + got, at + length);
    }
    kernel.prepare(wordsAt, inputsAt[slot], count * length);
    // The coefficients go at the end of the tables' room, as little-endian words (see kernel-simd's tables),
    // asked again for each range: kept for all, they would be as large as the inputs' and tables' room.
    const total = outputs * count;
    const listAt = tablesAt[slot] + total * (TABLE_BYTES - 2);
    const list = new Uint16Array(memory.buffer, listAt, total);
    for (let o = 0; o < outputs; o++) for (let k = 0; k < count; k++) list[o * count + k] = options.coefficient(o, batch.first + k);
    kernel.tables(listAt, total, tablesAt[slot]);
  };
  const read = (source: SliceSource, start: number, at: number, wanted: number): number => {
    const from = source.offset + start;
    if (source.bytes) {
      const part = source.bytes.subarray(from, from + wanted);
      bytes.set(part, at);
      return part.length;
    }
    if (!source.path) throw new Error("slice source has neither path nor bytes");
    let fd = files.get(source.path);
    if (fd === undefined) files.set(source.path, (fd = openSync(fsPath(source.path), "r")));
    // A file shorter than its slice reads as zeros (the caller fills them in).
    return readAt(fd, bytes, wanted, from, at);
  };

  try {
    await withWorkers(threads - 1, async (workers) => {
      let job = 0;
      try {
        await startWorkers(workers, module, memory);
        for (let start = 0; start < padded; start += rangeLength) {
          const length = Math.min(rangeLength, padded - start);
          bytes.fill(0, outputsAt, outputsAt + outputs * rangeLength);
          load(0, start, length);
          for (let b = 0; b < batches.length; b++) {
            const count = batches[b].sources.length;
            const slot = b % 2;
            control[Control.units] = Math.ceil(length / UNIT_BYTES) * groups;
            control[Control.groups] = groups;
            control[Control.outputs] = outputs;
            control[Control.inputsAt] = inputsAt[slot];
            control[Control.stride] = length * INPUT_SCALE;
            control[Control.count] = count;
            control[Control.tablesAt] = tablesAt[slot];
            control[Control.outputsAt] = outputsAt;
            control[Control.row] = rangeLength;
            control[Control.length] = length;
            control[Control.next] = 0;
            control[Control.done] = 0;
            Atomics.store(control, Control.job, ++job);
            Atomics.notify(control, Control.job);
            // The next batch is made ready while the workers start on this one; then this thread claims units too.
            if (b + 1 < batches.length) load(b + 1, start, length);
            claimUnits(control, kernel.mulAddBatch);
            for (let done = Atomics.load(control, Control.done); done < workers.length; done = Atomics.load(control, Control.done)) {
              Atomics.wait(control, Control.done, done);
            }
            if (Atomics.load(control, Control.failed)) throw new Error("PAR2 worker failed (see its message)");
            if (options.onProgress) {
              options.onProgress(batches[b].sources.reduce((sum, source) => sum + Math.max(0, Math.min(length, source.length - start)), 0));
            }
          }
          kernel.join(outputsAt, outputsAt, outputs * rangeLength);
          const kept = Math.min(length, sliceSize - start);
          await onRange(start, Array.from({ length: outputs }, (_, o) => bytes.subarray(outputsAt + o * rangeLength, outputsAt + o * rangeLength + kept)));
          // Between ranges the event loop runs (an abort, the workers' messages).
          await new Promise<void>((resolve) => setImmediate(resolve));
          signal?.throwIfAborted();
        }
      } finally {
        Atomics.store(control, Control.job, -1);
        Atomics.notify(control, Control.job);
      }
    }, "shared");
  } finally {
    for (const fd of files.values()) closeSync(fd);
  }
}

/** Gives each worker the module and memory, and waits until each has instantiated it (or failed to). */
async function startWorkers(workers: readonly Worker[], module: WebAssembly.Module, memory: WebAssembly.Memory): Promise<void> {
  await Promise.all(
    workers.map(
      (worker) =>
        new Promise<void>((resolve, reject) => {
          worker.onmessage = (event: MessageEvent<SharedWorkerReply>) => {
            if (event.data.type === "ready") resolve();
            else if (event.data.type === "error") reject(new Error(`PAR2 worker: ${event.data.message}`));
          };
          worker.onerror = (event) => reject(new Error(`PAR2 worker: ${event.message}`));
          worker.postMessage({ module, memory } satisfies SharedWorkerRequest);
        }),
    ),
  );
}

/** Whether this host can take the shared way (else slice-multiply's workers with their own memories). */
export function sharedSupported(): boolean {
  return LITTLE_ENDIAN && typeof SharedArrayBuffer === "function";
}
