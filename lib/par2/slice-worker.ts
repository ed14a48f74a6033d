/**
 * Worker-thread entry: owns one kernel and one SliceAccumulator for its part
 * of every slice. Messages: start → batch* → finish (answered with the part's
 * outputs, transferred, not copied). Any error is sent back, never thrown away.
 */
import { createKernel, type Kernel, type KernelName } from "./kernel.ts";
import { SliceAccumulator, type AccumulatorShape, type SliceSource } from "./slice-accumulator.ts";

declare const self: Worker;

export type WorkerRequest =
  /** `module`: the SIMD kernel compiled by the main thread (instantiated here, not compiled again). */
  | { readonly type: "start"; readonly kernel: KernelName; readonly module?: WebAssembly.Module; readonly shape: AccumulatorShape }
  | { readonly type: "batch"; readonly sources: readonly SliceSource[]; readonly coefficients: Uint16Array }
  /** `into`: a buffer to return the part in (transferred both ways, reused range after range). */
  | { readonly type: "finish"; readonly into?: Uint8Array };

export type WorkerReply =
  | { readonly type: "done" }
  | { readonly type: "result"; readonly part: Uint8Array }
  | { readonly type: "error"; readonly message: string };

let accumulator: SliceAccumulator | undefined;
/**
 * One kernel per kind for the worker's life: its memory only grows, so a
 * new kernel per range would leave the old memories to the collector and
 * RSS would climb with the file.
 */
const kernels = new Map<KernelName, Kernel>();
function kernelOf(name: KernelName, module?: WebAssembly.Module): Kernel {
  let kernel = kernels.get(name);
  if (!kernel) kernels.set(name, (kernel = createKernel(name, module)));
  return kernel;
}

self.onmessage = (event: MessageEvent<WorkerRequest>) => {
  const request = event.data;
  try {
    if (request.type === "start") {
      accumulator?.close();
      accumulator = new SliceAccumulator(kernelOf(request.kernel, request.module), request.shape);
      self.postMessage({ type: "done" } satisfies WorkerReply);
    } else if (request.type === "batch") {
      if (!accumulator) throw new Error("batch before start");
      accumulator.addBatch(request.sources, request.coefficients);
      self.postMessage({ type: "done" } satisfies WorkerReply);
    } else {
      if (!accumulator) throw new Error("finish before start");
      const part = accumulator.result(request.into);
      accumulator.close();
      accumulator = undefined;
      const unused = request.into && part.buffer !== request.into.buffer ? [request.into.buffer as ArrayBuffer] : [];
      self.postMessage({ type: "result", part } satisfies WorkerReply, [part.buffer as ArrayBuffer, ...unused]);
    }
  } catch (error) {
    self.postMessage({ type: "error", message: error instanceof Error ? error.message : String(error) } satisfies WorkerReply);
  }
};
