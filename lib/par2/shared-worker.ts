/**
 * Worker-thread entry of a shared multiplication (shared-multiply.ts): the
 * SIMD kernel instantiated over the calling thread's shared memory, then
 * units of each job claimed until told to stop. Jobs and their ends are
 * signalled through the memory's control words (Atomics), not messages, so
 * nothing is copied or allocated per job; the only import is the unit loop,
 * so the thread holds little beyond its runtime.
 */
import { claimUnits, Control, CONTROL_WORDS, type MulAddBatch } from "./shared-units.ts";

declare const self: Worker;

export type SharedWorkerRequest = { readonly module: WebAssembly.Module; readonly memory: WebAssembly.Memory };
export type SharedWorkerReply = { readonly type: "ready" } | { readonly type: "stopped" } | { readonly type: "error"; readonly message: string };

self.onmessage = (event: MessageEvent<SharedWorkerRequest>) => {
  const { module, memory } = event.data;
  const control = new Int32Array(memory.buffer, 0, CONTROL_WORDS);
  let ready = false;
  try {
    const { mulAddBatch } = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as { mulAddBatch: MulAddBatch };
    self.postMessage({ type: "ready" } satisfies SharedWorkerReply);
    ready = true;
    for (let seen = 0; ; ) {
      // Until the job changes: a wait may return without a notify, and a job done twice would count its worker done twice.
      for (let job = Atomics.load(control, Control.job); job === seen; job = Atomics.load(control, Control.job)) Atomics.wait(control, Control.job, seen);
      seen = Atomics.load(control, Control.job);
      if (seen < 0) break;
      claimUnits(control, mulAddBatch);
      Atomics.add(control, Control.done, 1);
      Atomics.notify(control, Control.done);
    }
    self.postMessage({ type: "stopped" } satisfies SharedWorkerReply);
  } catch (error) {
    // The calling thread waits on the control words (ready or not): told there, and counted done so it wakes.
    if (ready) {
      Atomics.store(control, Control.failed, 1);
      Atomics.add(control, Control.done, 1);
      Atomics.notify(control, Control.done);
    }
    self.postMessage({ type: "error", message: error instanceof Error ? error.message : String(error) } satisfies SharedWorkerReply);
  }
};
