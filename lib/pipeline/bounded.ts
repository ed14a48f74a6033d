import PQueue from "p-queue";

export interface MapBoundedOptions {
  /** Items worked on at once; also the most items held in memory by this stage. */
  readonly concurrency: number;
  readonly signal?: AbortSignal;
}

type Settled<R> = { readonly id: number; readonly ok: true; readonly value: R } | { readonly id: number; readonly ok: false; readonly error: unknown };

/**
 * Maps an async iterable with bounded concurrency, yielding results as they
 * complete. It pulls a new item only when fewer than `concurrency` are in
 * flight, so the pull chain's backpressure holds: a slow consumer stops the
 * producer, and memory stays bounded whatever the input size.
 */
export async function* mapBounded<T, R>(
  source: AsyncIterable<T>,
  fn: (item: T, signal?: AbortSignal) => Promise<R>,
  options: MapBoundedOptions,
): AsyncGenerator<R> {
  const { concurrency, signal } = options;
  const queue = new PQueue({ concurrency });
  const inFlight = new Map<number, Promise<Settled<R>>>();
  const iterator = source[Symbol.asyncIterator]();
  let nextId = 0;
  let exhausted = false;
  try {
    for (;;) {
      while (!exhausted && inFlight.size < concurrency) {
        signal?.throwIfAborted();
        await queue.onSizeLessThan(concurrency);
        const next = await iterator.next();
        if (next.done) {
          exhausted = true;
          break;
        }
        const id = nextId++;
        const item = next.value;
        const task = queue
          .add(() => fn(item, signal))
          .then(
            (value): Settled<R> => ({ id, ok: true, value: value as R }),
            (error): Settled<R> => ({ id, ok: false, error }),
          );
        inFlight.set(id, task);
      }
      if (inFlight.size === 0) return;
      const settled = await Promise.race(inFlight.values());
      inFlight.delete(settled.id);
      if (!settled.ok) throw settled.error;
      yield settled.value;
    }
  } finally {
    queue.clear();
    await Promise.allSettled(inFlight.values());
    await iterator.return?.();
  }
}

/** Collects items into arrays of at most `size` (or until `maxWaitMs` passed since the first). */
export async function* batches<T>(
  source: AsyncIterable<T>,
  options: { readonly size: number; readonly weight?: (item: T) => number; readonly maxWeight?: number; readonly maxWaitMs?: number },
): AsyncGenerator<T[]> {
  let batch: T[] = [];
  let weight = 0;
  let started = 0;
  for await (const item of source) {
    if (batch.length === 0) started = performance.now();
    batch.push(item);
    weight += options.weight?.(item) ?? 0;
    const full = batch.length >= options.size || (options.maxWeight !== undefined && weight >= options.maxWeight);
    const old = options.maxWaitMs !== undefined && performance.now() - started >= options.maxWaitMs;
    if (full || old) {
      yield batch;
      batch = [];
      weight = 0;
    }
  }
  if (batch.length > 0) yield batch;
}
