export interface MapBoundedOptions {
  /** Items worked on at once; also the most items held in memory by this stage. */
  readonly concurrency: number;
  readonly signal?: AbortSignal;
}

type Settled<R> = { readonly ok: true; readonly value: R } | { readonly ok: false; readonly error: unknown };

/**
 * Maps an async iterable with bounded concurrency, yielding results as they
 * complete. It pulls a new item only when fewer than `concurrency` are in
 * flight, so the pull chain's backpressure holds: a slow consumer stops the
 * producer, and memory stays bounded whatever the input size. Completed
 * results wait in a queue (not a Promise.race over everything in flight),
 * so a wide window costs nothing per item. Each item's work starts at once:
 * the in-flight count already bounds it, and a task queue (p-queue, before)
 * cost a volume send of 328 blocks about 40 ms of CPU in its bookkeeping
 * (async contexts, timers, events) across the pipeline's stages.
 */
export async function* mapBounded<T, R>(
  source: AsyncIterable<T>,
  fn: (item: T, signal?: AbortSignal) => Promise<R>,
  options: MapBoundedOptions,
): AsyncGenerator<R> {
  const { concurrency, signal } = options;
  // Work still running: waited for when the consumer stops early, so nothing it holds (a slot, a file) is reused meanwhile.
  const running = new Set<Promise<void>>();
  const iterator = source[Symbol.asyncIterator]();
  const completed: Settled<R>[] = [];
  let completedHead = 0;
  let inFlight = 0;
  let exhausted = false;
  let wake: (() => void) | undefined;
  // An item counts as in flight until it is yielded, not just until its
  // work is done: otherwise finished results pile up while the consumer is slow.
  const settle = (result: Settled<R>) => {
    completed.push(result);
    wake?.();
    wake = undefined;
  };
  try {
    for (;;) {
      while (!exhausted && inFlight < concurrency) {
        signal?.throwIfAborted();
        const next = await iterator.next();
        if (next.done) {
          exhausted = true;
          break;
        }
        inFlight++;
        const item = next.value;
        let work: Promise<R>;
        try {
          work = fn(item, signal);
        } catch (error) {
          work = Promise.reject(error);
        }
        const done: Promise<void> = work.then(
          (value) => settle({ ok: true, value }),
          (error) => settle({ ok: false, error }),
        );
        running.add(done);
        void done.then(() => running.delete(done));
      }
      if (completedHead === completed.length) {
        if (inFlight === 0) return;
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      const result = completed[completedHead];
      // The slot is cleared as it is taken: until the next splice it would keep the result (a 4 MiB block) alive.
      completed[completedHead++] = undefined as unknown as Settled<R>;
      inFlight--;
      if (completedHead > 1024) {
        completed.splice(0, completedHead);
        completedHead = 0;
      }
      if (!result.ok) throw result.error;
      yield result.value;
    }
  } finally {
    await Promise.all(running);
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
