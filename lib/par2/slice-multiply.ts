/**
 * outputs[o] = Σ_k coefficient(o, k) · input[k] over whole slices, the one
 * operation behind both encoding and repair. Memory stays within a budget
 * whatever the slice size: the slices are worked through by byte range (all
 * outputs' bytes start..end from all inputs' bytes start..end), so only a
 * few ranges of every output are ever held, and each range is handed to the
 * caller as soon as it is done. Large jobs are spread over worker threads,
 * each owning a part of every range (so no input byte is read or sent twice
 * and no result is merged); small jobs run in the calling thread, where the
 * round trips would cost more than the work.
 */
import { availableParallelism } from "node:os";
import { chooseKernel, createKernel, kernelShape, type Kernel, type KernelName } from "./kernel.ts";
import { simdModule } from "./kernel-simd.ts";
import { multiplyShared, planShared, sharedSupported } from "./shared-multiply.ts";
import { MAX_BATCH, SliceAccumulator, type SliceSource } from "./slice-accumulator.ts";
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
   * The calling thread computes beside the workers, so one worker fewer runs
   * (each costs megabytes of runtime): for `blaine par2`, whose main thread
   * has nothing else to do meanwhile. With the SIMD kernel and one worker
   * both threads then work in one shared memory (shared-multiply.ts), the
   * calling thread blocked between ranges. An archive run's main thread drives the
   * pipeline, and leaves the products to workers.
   */
  readonly shareCallingThread?: boolean;
  readonly signal?: AbortSignal;
  /**
   * Receives the outputs range by range, in increasing `start`: outputs[i]
   * holds output firstOutput + i's bytes from `start` on (never past the
   * slice). firstOutput is 0 (every output at once) unless `groupOutputs`.
   * The views are valid during the call only. Without it, whole outputs
   * are returned (for jobs known to be small).
   */
  readonly onRange?: (start: number, outputs: readonly Uint8Array[], firstOutput: number) => void | Promise<void>;
  /**
   * The caller takes the outputs a group at a time (each group's ranges in
   * increasing `start`, then the next group's): many outputs from little
   * input (create -b1 -c16000) are then computed a group at a time over
   * long ranges, the inputs read once per group, instead of in ranges of a
   * few dozen bytes (a write and a hash per output and range, tables of
   * every output per range: quadratic in the output count).
   */
  readonly groupOutputs?: boolean;
  /** Bytes this multiplication may hold (outputs, inputs, tables); default DEFAULT_MEMORY. */
  readonly memory?: number;
  /** Input bytes multiplied so far, as they are done (for a progress display). */
  readonly onProgress?: (bytes: number) => void;
}

/**
 * Memory for one multiplication when the caller gives none. Small, since
 * the runtime and its compiled kernels already take ~55 MB (par2cmdline's
 * whole repair of 500 MiB takes 31 MB), yet each range is still long
 * enough that the per-range costs (a read per input and part, tables per
 * input and output) stay a few percent of the products.
 */
export const DEFAULT_MEMORY = 8 * 1024 * 1024;
/**
 * Ranges a thread may compute beyond the one being handed over (slack for a
 * preempted thread): each holds its parts' outputs once more.
 */
const RANGES_AHEAD = 2;
/** Below this many multiply-accumulated bytes, the calling thread does it (a few milliseconds of work). */
const WORKER_THRESHOLD = 64 * 1024 * 1024;
/** Coefficients are computed once for all ranges when they take at most this much; else again for each range. */
const COEFFICIENT_CACHE_BYTES = 16 * 1024 * 1024;
/**
 * Ranges shorter than this (and than the slice) are worth splitting the
 * outputs into groups for (MultiplyOptions.groupOutputs): each output's
 * range then costs its caller a write and a hash call of at least this much.
 */
const GROUP_RANGE_BYTES = 64 * 1024;
/**
 * The inputs are read and prepared once per group, so groups are made only
 * while that rereading stays within this share of the output bytes (which
 * the caller writes anyway): never for a usual create, whose inputs are ten
 * times its outputs or more.
 */
const GROUP_REREAD_SHARE = 0.25;

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
 * How the budget is spent: half on the ranges' outputs, held in the
 * kernels and as results waiting to be handed over (up to RANGES_AHEAD of
 * them), half on each kernel's inputs (prepared: inputScale bytes per
 * byte) and coefficient tables.
 */
function plan(options: MultiplyOptions, outputCount = options.outputCount): Plan {
  const { sliceSize, inputs } = options;
  const kernel = chooseKernel(options.kernel);
  const padded = Math.ceil(sliceSize / 32) * 32;
  const work = inputs.length * sliceSize * options.outputCount;
  const inThread =
    options.inThread === true || (options.threads === undefined && work < WORKER_THRESHOLD) || (options.shareCallingThread === true && options.threads === 1);
  const threads = inThread ? 1 : Math.max(1, Math.min(options.threads ?? availableParallelism(), padded / 32));
  const memory = options.memory ?? DEFAULT_MEMORY;
  const unit = 32 * threads;
  const rangeLength = Math.min(padded, Math.max(unit, Math.floor(memory / 2 / ((1 + RANGES_AHEAD) * outputCount) / unit) * unit));
  const partLength = Math.ceil(rangeLength / threads / 32) * 32;
  const { tableBytes, inputScale } = kernelShape(kernel);
  const perInput = partLength * inputScale + outputCount * tableBytes;
  const batchSize = Math.max(1, Math.min(MAX_BATCH, Math.floor(memory / 2 / threads / perInput), inputs.length));
  return { padded, kernel, threads, inThread, rangeLength, batchSize };
}

/** The outputs, in order, when no `onRange` takes them; otherwise none. */
export async function multiplySlices(options: MultiplyOptions): Promise<Uint8Array[]> {
  const { sliceSize, outputCount } = options;
  if (outputCount === 0) return [];
  const shape = plan(options);
  const whole = options.onRange ? undefined : Array.from({ length: outputCount }, () => new Uint8Array(sliceSize));
  const onRange = options.onRange ?? ((start: number, outputs: readonly Uint8Array[]) => outputs.forEach((bytes, o) => whole![o].set(bytes, start)));
  const size = options.onRange && options.groupOutputs ? groupSize(options, shape) : outputCount;
  if (size >= outputCount) {
    await multiplyGroup(options, shape, (start, outputs) => onRange(start, outputs, 0));
    return whole ?? [];
  }
  // Each group multiplies every input once more: progress counts each input byte once over all of them.
  const groups = Math.ceil(outputCount / size);
  // The result buffers go from group to group (each group's are the size of the first's, or smaller): 26 MB less peak with 4000 outputs.
  const spares: Spares = [];
  let multiplied = 0;
  let reported = 0;
  const onProgress = options.onProgress && ((bytes: number) => {
    multiplied += bytes;
    const now = Math.floor(multiplied / groups);
    if (now > reported) options.onProgress!(now - reported);
    reported = now;
  });
  for (let first = 0; first < outputCount; first += size) {
    const count = Math.min(size, outputCount - first);
    // The way chosen for all the outputs holds for each group (the threads, or none for a small job).
    const group: MultiplyOptions = {
      ...options, outputCount: count, threads: shape.threads, inThread: shape.inThread, onProgress,
      coefficient: (output, input) => options.coefficient(first + output, input),
    };
    await multiplyGroup(group, plan(group), (start, outputs) => onRange(start, outputs, first), spares);
  }
  return whole ?? [];
}

/**
 * Outputs per group (MultiplyOptions.groupOutputs): the most whose ranges
 * are GROUP_RANGE_BYTES long (or the whole slice), yet not so few that the
 * inputs are reread more than GROUP_REREAD_SHARE of the output bytes.
 */
function groupSize(options: MultiplyOptions, shape: Plan): number {
  const { outputCount, sliceSize, inputs } = options;
  const shared = usesShared(options, shape);
  const rangeOf = (outputs: number) =>
    shared ? planShared({ ...options, outputCount: outputs }, options.memory ?? DEFAULT_MEMORY).rangeLength : plan(options, outputs).rangeLength;
  const wanted = Math.min(shape.padded, GROUP_RANGE_BYTES);
  if (rangeOf(outputCount) >= wanted) return outputCount;
  // The largest count whose ranges are long enough (ranges shorten as outputs grow).
  let low = 1;
  let high = outputCount;
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (rangeOf(middle) >= wanted) low = middle;
    else high = middle - 1;
  }
  const inputBytes = inputs.reduce((sum, source) => sum + source.length, 0);
  const mostGroups = Math.max(1, Math.floor((GROUP_REREAD_SHARE * outputCount * sliceSize) / Math.max(1, inputBytes)));
  const groups = Math.min(Math.ceil(outputCount / low), mostGroups);
  return Math.ceil(outputCount / groups);
}

function usesShared(options: MultiplyOptions, shape: Plan): boolean {
  return !shape.inThread && options.shareCallingThread === true && shape.kernel === "simd" && shape.threads === 2 && sharedSupported();
}

/** Every output of `options` (one group, or all), range by range. */
async function multiplyGroup(options: MultiplyOptions, shape: Plan, onRange: OnRange, spares: Spares = []): Promise<void> {
  const { outputCount, inputs } = options;
  // One worker beside this thread only (-t2, the default on two cores): with two workers (-t3 on two cores) a 500 MiB
  // repair failed 2 of ~40 runs under load (a rebuilt slice off its MD5, so nothing was replaced), cause not found yet.
  if (usesShared(options, shape)) {
    await multiplyShared(options, shape.threads, options.memory ?? DEFAULT_MEMORY, onRange);
    return;
  }
  const groups: { start: number; sources: SliceSource[] }[] = [];
  for (let start = 0; start < inputs.length; start += shape.batchSize) groups.push({ start, sources: inputs.slice(start, start + shape.batchSize) });
  const coefficientsOf = (group: { start: number; sources: SliceSource[] }) => {
    const coefficients = new Uint16Array(outputCount * group.sources.length);
    for (let o = 0; o < outputCount; o++) for (let k = 0; k < group.sources.length; k++) coefficients[o * group.sources.length + k] = options.coefficient(o, group.start + k);
    return coefficients;
  };
  const cached = inputs.length * outputCount * 2 <= COEFFICIENT_CACHE_BYTES ? groups.map(coefficientsOf) : undefined;
  const batches = () => groups.map((group, i) => ({ sources: group.sources, coefficients: cached?.[i] ?? coefficientsOf(group) }));

  const ranges: Range[] = [];
  for (let start = 0; start < shape.padded; start += shape.rangeLength) ranges.push({ start, length: Math.min(shape.rangeLength, shape.padded - start) });
  if (shape.inThread) await multiplyInThread(options, shape, ranges, batches, onRange, spares);
  else await multiplyInWorkers(options, shape, ranges, batches, onRange, spares);
}

/** Result buffers by thread, reused range after range (and group after group): results go into them when large enough. */
type Spares = Uint8Array[][];

interface Batch {
  readonly sources: readonly SliceSource[];
  readonly coefficients: Uint16Array;
}

interface Range {
  readonly start: number;
  readonly length: number;
}

type OnRange = (start: number, outputs: readonly Uint8Array[]) => void | Promise<void>;

/** Input bytes of a batch within a range (for progress: each byte once). */
function inputBytes(batch: Batch, range: Range): number {
  return batch.sources.reduce((sum, source) => sum + Math.max(0, Math.min(range.length, source.length - range.start)), 0);
}

/** Hands over one part's outputs (`results` holds outputs × part.length bytes), cut at the slice's end. */
async function handOver(options: MultiplyOptions, part: Range, results: Uint8Array, onRange: OnRange): Promise<void> {
  const kept = Math.max(0, Math.min(part.length, options.sliceSize - part.start));
  if (kept === 0) return;
  await onRange(part.start, Array.from({ length: options.outputCount }, (_, o) => results.subarray(o * part.length, o * part.length + kept)));
}

/** Small jobs: every range in this thread, its result buffer reused. */
async function multiplyInThread(
  options: MultiplyOptions, shape: Plan, ranges: readonly Range[], batches: () => Batch[], onRange: OnRange, spares: Spares,
): Promise<void> {
  const spare = (spares[0] ??= []);
  for (const range of ranges) {
    const result = await computeHere(shape, range, options.outputCount, batches(), options.signal, spare.pop(), (batch) => options.onProgress?.(inputBytes(batch, range)), false);
    spare.push(new Uint8Array(result.buffer));
    await handOver(options, range, result, onRange);
  }
}

/**
 * Every range split in parts, one per thread (workers, and this thread when
 * it shares): each thread computes its part of one range after another
 * without waiting for the others, and a range is handed over, in order, as
 * soon as all its parts are in. On a loaded machine a preempted thread then
 * delays its own parts only, not every thread at every range.
 */
async function multiplyInWorkers(
  options: MultiplyOptions, shape: Plan, ranges: readonly Range[], batches: () => Batch[], onRange: OnRange, spares: Spares,
): Promise<void> {
  const { outputCount } = options;
  const threads = shape.threads;
  const local = options.shareCallingThread ? 1 : 0;
  const partOf = (range: Range, thread: number): Range => {
    const partLength = Math.ceil(range.length / threads / 32) * 32;
    return { start: range.start + thread * partLength, length: Math.max(0, Math.min(partLength, range.length - thread * partLength)) };
  };
  // A failed part stops the others (their workers are then not trusted again).
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const done = ranges.map(() => Promise.withResolvers<void>());
  const results = ranges.map(() => new Array<Uint8Array | undefined>(threads));
  const arrived = ranges.map(() => 0);
  for (let thread = 0; thread < threads; thread++) spares[thread] ??= [];
  let handed = 0;
  let wake = Promise.withResolvers<void>();

  const column = async (thread: number, compute: (part: Range, batches: readonly Batch[], into: Uint8Array | undefined, onBatch: (batch: Batch) => void) => Promise<Uint8Array>) => {
    for (const [r, range] of ranges.entries()) {
      while (r - handed >= RANGES_AHEAD) await wake.promise;
      signal.throwIfAborted();
      const part = partOf(range, thread);
      if (part.length > 0) {
        // Each thread does its part of a batch; the batch's bytes count once, from the first part.
        const onBatch = (batch: Batch) => thread === 0 && options.onProgress?.(inputBytes(batch, range));
        results[r][thread] = await compute(part, batches(), spares[thread].pop(), onBatch);
      }
      if (++arrived[r] === threads) done[r].resolve();
    }
  };
  const handOverAll = async () => {
    for (const [r, range] of ranges.entries()) {
      await done[r].promise;
      signal.throwIfAborted();
      for (let thread = 0; thread < threads; thread++) {
        const result = results[r][thread];
        if (!result) continue;
        await handOver(options, partOf(range, thread), result, onRange);
        spares[thread].push(new Uint8Array(result.buffer));
        results[r][thread] = undefined;
      }
      handed = r + 1;
      wake.resolve();
      wake = Promise.withResolvers<void>();
    }
  };

  await withWorkers(threads - local, async (workers) => {
    const columns = Array.from({ length: threads }, (_, thread) =>
      column(thread, (part, batches, into, onBatch) =>
        thread < local
          ? computeHere(shape, part, outputCount, batches, signal, into, onBatch, true)
          : runWorker(workers[thread - local], shape.kernel, part, outputCount, shape.batchSize, batches, signal, into, onBatch),
      ),
    );
    const handing = handOverAll();
    try {
      await Promise.all([...columns, handing]);
    } catch (error) {
      stop.abort(error);
      // Whoever waits for a range or a turn wakes to the abort; every column has stopped before the workers go back (or are terminated).
      done.forEach((deferred) => deferred.resolve());
      wake.resolve();
      await Promise.allSettled([...columns, handing]);
      throw error;
    }
  });
}

/**
 * One part computed in this thread; `yielding` between batches when workers
 * compute beside it, so their replies are handled.
 */
async function computeHere(
  shape: Plan, part: Range, outputs: number, batches: readonly Batch[],
  signal: AbortSignal | undefined, into: Uint8Array | undefined, onBatch: (batch: Batch) => void, yielding: boolean,
): Promise<Uint8Array> {
  const kernel = borrowKernel(shape.kernel);
  const accumulator = new SliceAccumulator(kernel, { partOffset: part.start, partLength: part.length, outputs, batchCapacity: shape.batchSize });
  try {
    for (const batch of batches) {
      if (yielding) await new Promise<void>((resolve) => setImmediate(resolve));
      signal?.throwIfAborted();
      accumulator.addBatch(batch.sources, batch.coefficients);
      onBatch(batch);
    }
    return accumulator.result(into);
  } finally {
    accumulator.close();
    returnKernel(shape.kernel, kernel);
  }
}

/**
 * Kernels of this thread, reused (instantiating WebAssembly for each small
 * set would cost more than its work), each lent to one accumulator at a
 * time: a part computed here yields between batches, and whatever runs
 * meanwhile (a range handed over that multiplies in turn, another set)
 * must not take the same memory.
 */
const idleKernels = new Map<KernelName, Kernel[]>();
function borrowKernel(name: KernelName): Kernel {
  return idleKernels.get(name)?.pop() ?? createKernel(name);
}
function returnKernel(name: KernelName, kernel: Kernel): void {
  const idle = idleKernels.get(name) ?? [];
  idle.push(kernel);
  idleKernels.set(name, idle);
}

/** Feeds every batch to one worker (at most two in flight, so reading and computing overlap) and returns its part. */
function runWorker(
  worker: Worker,
  kernel: KernelName,
  part: Range,
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
    send({ type: "start", kernel, module: kernel === "simd" ? simdModule() : undefined, shape: { partOffset: part.start, partLength: part.length, outputs, batchCapacity } });
  });
}
