/**
 * outputs[o] = Σ_k coefficient(o, k) · input[k] over whole slices, the one
 * operation behind both encoding and repair. Large jobs are spread over
 * worker threads, each owning a byte range of every slice (so no input byte
 * is read or sent twice and no result is merged); small jobs run in the
 * calling thread, where the round trips would cost more than the work.
 */
import { availableParallelism } from "node:os";
import { chooseKernel, createKernel, type Kernel, type KernelName } from "./kernel.ts";
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
  readonly signal?: AbortSignal;
  /**
   * Receives each pass's outputs (outputs first…first+n-1) as soon as they
   * are done, instead of all of them at the end: a caller writing them out
   * holds one pass in memory, not every recovery slice of a huge file.
   */
  readonly onPass?: (first: number, outputs: Uint8Array[]) => void | Promise<void>;
  /** Most output bytes per pass (default OUTPUT_BUDGET). */
  readonly outputBudget?: number;
}

/** Inputs per batch: enough to amortise a round trip, few enough to keep tables and inputs in cache-sized memory. */
const BATCH = 48;
/** Below this many multiply-accumulated bytes, the calling thread does it (a few milliseconds of work). */
const WORKER_THRESHOLD = 64 * 1024 * 1024;
/**
 * Most output bytes held at once per pass; more outputs than this take
 * several passes over the inputs (a 20 GB film at 10 %: 2 GB of recovery
 * data, three passes).
 */
const OUTPUT_BUDGET = 768 * 1024 * 1024;

/** The outputs, in order (none when `onPass` takes them). */
export async function multiplySlices(options: MultiplyOptions): Promise<Uint8Array[]> {
  const { sliceSize, outputCount, inputs } = options;
  if (outputCount === 0) return [];
  const perPass = Math.max(1, Math.floor((options.outputBudget ?? OUTPUT_BUDGET) / Math.max(sliceSize, 1)));
  const outputs: Uint8Array[] = [];
  for (let first = 0; first < outputCount; first += perPass) {
    const count = Math.min(perPass, outputCount - first);
    const pass = await multiplyPass(options, first, count);
    if (options.onPass) await options.onPass(first, pass);
    else outputs.push(...pass);
  }
  return outputs;
}

async function multiplyPass(options: MultiplyOptions, firstOutput: number, outputCount: number): Promise<Uint8Array[]> {
  const { sliceSize, inputs, signal } = options;
  const kernel = chooseKernel(options.kernel);
  const padded = Math.ceil(sliceSize / 32) * 32;
  const work = inputs.length * sliceSize * outputCount;
  const threads = Math.max(1, Math.min(options.threads ?? (work < WORKER_THRESHOLD ? 1 : availableParallelism()), padded / 32));
  const partLength = Math.ceil(padded / threads / 32) * 32;
  const parts = Array.from({ length: threads }, (_, i) => ({ offset: i * partLength, length: Math.max(0, Math.min(partLength, padded - i * partLength)) })).filter((p) => p.length > 0);

  const batches: { sources: SliceSource[]; coefficients: Uint16Array }[] = [];
  for (let start = 0; start < inputs.length; start += BATCH) {
    const group = inputs.slice(start, start + BATCH);
    const coefficients = new Uint16Array(outputCount * group.length);
    for (let o = 0; o < outputCount; o++) for (let k = 0; k < group.length; k++) coefficients[o * group.length + k] = options.coefficient(firstOutput + o, start + k);
    batches.push({ sources: group.map(({ path, bytes, offset, length }) => ({ path, bytes, offset, length })), coefficients });
  }

  let results: Uint8Array[];
  if (parts.length === 1 && options.threads === undefined && work < WORKER_THRESHOLD) {
    const accumulator = new SliceAccumulator(localKernel(kernel), { partOffset: 0, partLength: padded, outputs: outputCount, batchCapacity: BATCH });
    try {
      for (const batch of batches) {
        signal?.throwIfAborted();
        accumulator.addBatch(batch.sources, batch.coefficients);
      }
      results = [accumulator.result()];
    } finally {
      accumulator.close();
    }
  } else {
    results = await withWorkers(parts.length, (workers) => Promise.all(parts.map((part, i) => runWorker(workers[i], kernel, part, outputCount, batches, signal))));
  }

  const outputs: Uint8Array[] = [];
  for (let o = 0; o < outputCount; o++) {
    const slice = new Uint8Array(sliceSize);
    parts.forEach((part, i) => {
      const from = results[i].subarray(o * part.length, o * part.length + part.length);
      slice.set(from.subarray(0, Math.max(0, Math.min(part.length, sliceSize - part.offset))), part.offset);
    });
    outputs.push(slice);
  }
  return outputs;
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
  batches: readonly { sources: SliceSource[]; coefficients: Uint16Array }[],
  signal?: AbortSignal,
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
      if (acknowledged === batches.length) send({ type: "finish" });
    };
    worker.onmessage = (event: MessageEvent<WorkerReply>) => {
      const reply = event.data;
      if (reply.type === "error") finish(new Error(`PAR2 worker: ${reply.message}`));
      else if (reply.type === "result") finish(undefined, reply.part);
      else {
        acknowledged++;
        pump();
      }
    };
    worker.onerror = (event) => finish(new Error(`PAR2 worker: ${event.message}`));
    send({ type: "start", kernel, shape: { partOffset: part.offset, partLength: part.length, outputs, batchCapacity: BATCH } });
  });
}
