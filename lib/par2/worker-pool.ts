/**
 * The worker threads of the PAR2 engine, started once and kept for the life
 * of the process (unref'd, so they never keep it alive): an archive run
 * encodes many files, and starting threads for each would cost more than a
 * mid-sized file's work. One multiply pass at a time borrows them; the
 * others wait their turn (the pass already uses every core).
 */
let turn: Promise<void> = Promise.resolve();

/** Each kind of worker: slice-worker.ts (its own accumulator, fed by messages) or shared-worker.ts (shared memory). */
const WORKER_URLS = {
  slice: new URL("./slice-worker.ts", import.meta.url).href,
  shared: new URL("./shared-worker.ts", import.meta.url).href,
} as const;
export type WorkerKind = keyof typeof WORKER_URLS;
const idleOf: Record<WorkerKind, Worker[]> = { slice: [], shared: [] };

export async function withWorkers<T>(count: number, use: (workers: readonly Worker[]) => Promise<T>, kind: WorkerKind = "slice"): Promise<T> {
  const previous = turn;
  let release!: () => void;
  turn = new Promise<void>((resolve) => (release = resolve));
  await previous;
  const idle = idleOf[kind];
  const workers = idle.splice(0, count);
  while (workers.length < count) {
    // A shared worker allocates next to nothing (its work is in WebAssembly): JSC's small heap costs it no speed.
    const worker = new Worker(WORKER_URLS[kind], { smol: kind === "shared" });
    worker.unref();
    workers.push(worker);
  }
  // Referenced while lent: awaiting an unreferenced worker's reply makes
  // Bun's event loop spin on the main thread (measured: one core busy doing
  // nothing, half of a two-core machine's throughput); idle, they are
  // unreferenced again so they never keep the process alive.
  for (const worker of workers) worker.ref();
  let healthy = false;
  try {
    const result = await use(workers);
    healthy = true;
    return result;
  } finally {
    // A worker that failed or was aborted mid-job is not trusted with another.
    for (const worker of workers) worker.unref();
    if (healthy) idle.push(...workers);
    else for (const worker of workers) worker.terminate();
    release();
  }
}
