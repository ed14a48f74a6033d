/**
 * outputs[o] = Σ_k coefficient(o, k) · input[k] over whole slices, the one
 * operation behind both encoding and repair. Memory stays within a budget
 * whatever the slice size: the slices are worked through by byte range (all
 * outputs' bytes start..end from all inputs' bytes start..end), so only one
 * range of every output is ever held, and each range is handed to the caller
 * as soon as it is done. Large jobs are spread over worker threads, each
 * owning a part of the range (so no input byte is read or sent twice and no
 * result is merged); small jobs run in the calling thread, where the round
 * trips would cost more than the work.
 */
import { availableParallelism } from "node:os";
import { chooseKernel, createKernel, kernelShape, type Kernel, type KernelName } from "./kernel.ts";
import { simdModule } from "./kernel-simd.ts";
import { SliceAccumulator, type SliceSource } from "./slice-accumulator.ts";
import type { WorkerReply, WorkerRequest } from "./slice-worker.ts";
import { withWorkers } from "./worker-pool.ts";

export interface MultiplyOptions {
  readonly sliceSize: number;
  readonly outputCount: number;
  readonly inputs: readonly SliceSource[];
  /** The coefficient of input k in output o. */
  readonly coefficient: (output: number, input: number) => number;
  readonly kernel?: KernelName | "auto";
  /** Worker threads; default: one per core, none for small jobs. */
  readonly threads?: number;
  /** Work in the calling thread whatever the size (inside another multiplication's `onRange`, which holds the workers). */
  readonly inThread?: boolean;
  /**
   * The calling thread computes one part itself, so one worker fewer runs
   * (each costs ~9 MB of runtime): for `blaine par2`, whose main thread has
   * nothing else to do meanwhile. An archive run's main thread drives the
   * pipeline, and leaves the products to workers.
   */
  readonly shareCallingThread?: boolean;
  readonly signal?: AbortSignal;
  /**
   * Receives the outputs range by range, in increasing `start`: outputs[o]
   * holds output o's bytes from `start` on (never past the slice). The views
   * are valid during the call only. Without it, whole outputs are returned
   * (for jobs known to be small).
   */
  readonly onRange?: (start: number, outputs: readonly Uint8Array[]) => void | Promise<void>;
  /** Bytes this multiplication may hold (outputs, inputs, tables); default DEFAULT_MEMORY. */
  readonly memory?: number;
  /** Input bytes multiplied so far, as they are done (for a progress display). */
  readonly onProgress?: (bytes: number) => void;
}

/**
 * Memory for one multiplication when the caller gives none. Small enough
 * that a repair stays within twice par2cmdline's memory (the runtime and
 * its compiled kernels take ~55 MB of that), yet each range is still long
 * enough that the per-range costs (a read per input and part, tables per
 * input and output) stay a few percent of the products.
 */
export const DEFAULT_MEMORY = 8 * 1024 * 1024;
/** Most inputs per batch: enough to amortise a round trip and keep an output chunk in L1 across many inputs. */
const MAX_BATCH = 48;
/** Below this many multiply-accumulated bytes, the calling thread does it (a few milliseconds of work). */
const WORKER_THRESHOLD = 64 * 1024 * 1024;
/** Coefficients are computed once for all ranges when they take at most this much; else again for each range. */
const COEFFICIENT_CACHE_BYTES = 16 * 1024 * 1024;

interface Plan {
  readonly padded: number;
  readonly kernel: KernelName;
  readonly threads: number;
  readonly inThread: boolean;
  /** Bytes of every slice per range (a multiple of 32 × threads, except at the end). */
  readonly rangeLength: number;
  readonly batchSize: number;
}

/**
 * How the budget is spent: half on the range's outputs, which are held
 * twice (in the kernels, then the copy handed over), half on each kernel's
 * inputs (prepared: inputScale bytes per byte) and coefficient tables.
 */
function plan(options: MultiplyOptions): Plan {
  const { sliceSize, outputCount, inputs } = options;
  const kernel = chooseKernel(options.kernel);
  const padded = Math.ceil(sliceSize / 32) * 32;
  const work = inputs.length * sliceSize * outputCount;
  const inThread =
    options.inThread === true || (options.threads === undefined && work < WORKER_THRESHOLD) || (options.shareCallingThread === true && options.threads === 1);
  const threads = inThread ? 1 : Math.max(1, Math.min(options.threads ?? availableParallelism(), padded / 32));
  const memory = options.memory ?? DEFAULT_MEMORY;
  const unit = 32 * threads;
  const rangeLength = Math.min(padded, Math.max(unit, Math.floor(memory / 2 / (2 * outputCount) / unit) * unit));
  const partLength = Math.ceil(rangeLength / threads / 32) * 32;
  const { tableBytes, inputScale } = kernelShape(kernel);
  const perInput = partLength * inputScale + outputCount * tableBytes;
  const batchSize = Math.max(1, Math.min(MAX_BATCH, Math.floor(memory / 2 / threads / perInput), inputs.length));
  return { padded, kernel, threads, inThread, rangeLength, batchSize };
}

/** The outputs, in order, when no `onRange` takes them; otherwise none. */
export async function multiplySlices(options: MultiplyOptions): Promise<Uint8Array[]> {
  const { sliceSize, outputCount, inputs } = options;
  if (outputCount === 0) return [];
  const shape = plan(options);
  const whole = options.onRange ? undefined : Array.from({ length: outputCount }, () => new Uint8Array(sliceSize));
  const onRange = options.onRange ?? ((start: number, outputs: readonly Uint8Array[]) => outputs.forEach((bytes, o) => whole![o].set(bytes, start)));
  const groups: { start: number; sources: SliceSource[] }[] = [];
  for (let start = 0; start < inputs.length; start += shape.batchSize) groups.push({ start, sources: inputs.slice(start, start + shape.batchSize) });
  const coefficientsOf = (group: { start: number; sources: SliceSource[] }) => {
    const coefficients = new Uint16Array(outputCount * group.sources.length);
    for (let o = 0; o < outputCount; o++) for (let k = 0; k < group.sources.length; k++) coefficients[o * group.sources.length + k] = options.coefficient(o, group.start + k);
    return coefficients;
  };
  const cached = inputs.length * outputCount * 2 <= COEFFICIENT_CACHE_BYTES ? groups.map(coefficientsOf) : undefined;
  const batches = () => groups.map((group, i) => ({ sources: group.sources, coefficients: cached?.[i] ?? coefficientsOf(group) }));

  // Each part's result buffer goes back and forth between this thread and its worker, reused for every range.
  const spares: (Uint8Array | undefined)[] = [];
  for (let start = 0; start < shape.padded; start += shape.rangeLength) {
    const length = Math.min(shape.rangeLength, shape.padded - start);
    await multiplyRange(options, shape, start, length, batches(), onRange, spares);
  }
  return whole ?? [];
}

interface Batch {
  readonly sources: readonly SliceSource[];
  readonly coefficients: Uint16Array;
}

/** One range of every output, handed to `onRange` part by part (in order) while the workers are still lent to it. */
async function multiplyRange(
  options: MultiplyOptions, shape: Plan, start: number, length: number, batches: readonly Batch[],
  onRange: (start: number, outputs: readonly Uint8Array[]) => void | Promise<void>,
  spares: (Uint8Array | undefined)[],
): Promise<void> {
  const { sliceSize, outputCount, signal } = options;
  const partLength = Math.ceil(length / shape.threads / 32) * 32;
  const parts = Array.from({ length: shape.threads }, (_, i) => ({ offset: start + i * partLength, length: Math.max(0, Math.min(partLength, length - i * partLength)) }))
    .filter((p) => p.length > 0);
  const handOver = async (results: readonly Uint8Array[]) => {
    for (const [i, part] of parts.entries()) {
      const kept = Math.max(0, Math.min(part.length, sliceSize - part.offset));
      if (kept === 0) continue;
      const views = Array.from({ length: outputCount }, (_, o) => results[i].subarray(o * part.length, o * part.length + kept));
      await onRange(part.offset, views);
    }
  };
  const inputBytes = (batch: Batch) => batch.sources.reduce((sum, source) => sum + Math.max(0, Math.min(length, source.length - start)), 0);

  if (shape.inThread) {
    const accumulator = new SliceAccumulator(localKernel(shape.kernel), { partOffset: start, partLength: length, outputs: outputCount, batchCapacity: shape.batchSize });
    try {
      for (const batch of batches) {
        signal?.throwIfAborted();
        accumulator.addBatch(batch.sources, batch.coefficients);
        options.onProgress?.(inputBytes(batch));
      }
      const result = accumulator.result(spares[0]);
      spares[0] = new Uint8Array(result.buffer);
      await handOver([result]);
    } finally {
      accumulator.close();
    }
    return;
  }
  const local = options.shareCallingThread && parts.length > 1 ? 1 : 0;
  await withWorkers(parts.length - local, async (workers) => {
    const results = await Promise.all(
      parts.map((part, i) => {
        // Each thread does its part of a batch; the batch's bytes count once, from the first part.
        const onBatch = (batch: Batch) => i === 0 && options.onProgress?.(inputBytes(batch));
        if (i < local) return computeHere(shape, part, outputCount, batches, signal, spares[i], onBatch);
        return runWorker(workers[i - local], shape.kernel, part, outputCount, shape.batchSize, batches, signal, spares[i], onBatch);
      }),
    );
    results.forEach((result, i) => (spares[i] = new Uint8Array(result.buffer)));
    await handOver(results);
  });
}

/** One part computed in this thread beside the workers, yielding between batches so their replies are handled. */
async function computeHere(
  shape: Plan, part: { offset: number; length: number }, outputs: number, batches: readonly Batch[],
  signal: AbortSignal | undefined, into: Uint8Array | undefined, onBatch: (batch: Batch) => void,
): Promise<Uint8Array> {
  const accumulator = new SliceAccumulator(localKernel(shape.kernel), { partOffset: part.offset, partLength: part.length, outputs, batchCapacity: shape.batchSize });
  try {
    for (const batch of batches) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      signal?.throwIfAborted();
      accumulator.addBatch(batch.sources, batch.coefficients);
      onBatch(batch);
    }
    return accumulator.result(into);
  } finally {
    accumulator.close();
  }
}

/** One kernel per kind in this thread, reused: instantiating WebAssembly for each small set would cost more than its work. */
const localKernels = new Map<KernelName, Kernel>();
function localKernel(name: KernelName): Kernel {
  let kernel = localKernels.get(name);
  if (!kernel) localKernels.set(name, (kernel = createKernel(name)));
  return kernel;
}

/** Feeds every batch to one worker (at most two in flight, so reading and computing overlap) and returns its part. */
function runWorker(
  worker: Worker,
  kernel: KernelName,
  part: { offset: number; length: number },
  outputs: number,
  batchCapacity: number,
  batches: readonly Batch[],
  signal: AbortSignal | undefined,
  into: Uint8Array | undefined,
  onBatch: (batch: Batch) => void,
): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) => {
    let sent = 0;
    let acknowledged = -1; // the start message is acknowledged first
    const send = (request: WorkerRequest) => worker.postMessage(request);
    const finish = (error?: Error, part?: Uint8Array) => {
      signal?.removeEventListener("abort", onAbort);
      worker.onmessage = null;
      worker.onerror = null;
      if (error) reject(error);
      else resolve(part!);
    };
    const onAbort = () => finish(signal?.reason instanceof Error ? signal.reason : new Error("aborted"));
    signal?.addEventListener("abort", onAbort);
    const pump = () => {
      while (sent < batches.length && sent - acknowledged < 2) {
        const batch = batches[sent++];
        send({ type: "batch", sources: batch.sources, coefficients: batch.coefficients });
      }
      if (acknowledged === batches.length) {
        if (into) worker.postMessage({ type: "finish", into } satisfies WorkerRequest, [into.buffer as ArrayBuffer]);
        else send({ type: "finish" });
      }
    };
    worker.onmessage = (event: MessageEvent<WorkerReply>) => {
      const reply = event.data;
      if (reply.type === "error") finish(new Error(`PAR2 worker: ${reply.message}`));
      else if (reply.type === "result") finish(undefined, reply.part);
      else {
        if (acknowledged >= 0) onBatch(batches[acknowledged]);
        acknowledged++;
        pump();
      }
    };
    worker.onerror = (event) => finish(new Error(`PAR2 worker: ${event.message}`));
    send({ type: "start", kernel, module: kernel === "simd" ? simdModule() : undefined, shape: { partOffset: part.offset, partLength: part.length, outputs, batchCapacity } });
  });
}
