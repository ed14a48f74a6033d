/**
 * Worker-thread entry: owns one kernel and one SliceAccumulator for its part
 * of every slice. Messages: start → batch* → finish (answered with the part's
 * outputs, transferred, not copied). Any error is sent back, never thrown away.
 */
import { createKernel, type KernelName } from "./kernel.ts";
import { SliceAccumulator, type AccumulatorShape, type SliceSource } from "./slice-accumulator.ts";

declare const self: Worker;

export type WorkerRequest =
  | { readonly type: "start"; readonly kernel: KernelName; readonly shape: AccumulatorShape }
  | { readonly type: "batch"; readonly sources: readonly SliceSource[]; readonly coefficients: Uint16Array }
  | { readonly type: "finish" };

export type WorkerReply =
  | { readonly type: "done" }
  | { readonly type: "result"; readonly part: Uint8Array }
  | { readonly type: "error"; readonly message: string };

let accumulator: SliceAccumulator | undefined;

self.onmessage = (event: MessageEvent<WorkerRequest>) => {
  const request = event.data;
  try {
    if (request.type === "start") {
      accumulator?.close();
      accumulator = new SliceAccumulator(createKernel(request.kernel), request.shape);
      self.postMessage({ type: "done" } satisfies WorkerReply);
    } else if (request.type === "batch") {
      if (!accumulator) throw new Error("batch before start");
      accumulator.addBatch(request.sources, request.coefficients);
      self.postMessage({ type: "done" } satisfies WorkerReply);
    } else {
      if (!accumulator) throw new Error("finish before start");
      const part = accumulator.result();
      accumulator.close();
      accumulator = undefined;
      self.postMessage({ type: "result", part } satisfies WorkerReply, [part.buffer as ArrayBuffer]);
    }
  } catch (error) {
    self.postMessage({ type: "error", message: error instanceof Error ? error.message : String(error) } satisfies WorkerReply);
  }
};
