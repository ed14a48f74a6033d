/**
 * The work both sides of a shared multiplication do (shared-multiply.ts, in
 * the calling thread, and shared-worker.ts): the job's parameters in control
 * words at the start of the shared memory, and the loop that claims units of
 * the job one at a time until none is left. No imports, so a worker loading
 * it loads nothing else.
 */

/** The SIMD kernel's shape (SIMD_SHAPE in kernel-simd.ts; shared-multiply checks they agree). */
export const TABLE_BYTES = 128;
export const INPUT_SCALE = 2;
/** Bytes of every output a unit covers (as SliceAccumulator's CHUNK: the output chunk stays in L1, the batch's inputs in L2). */
export const UNIT_BYTES = 2048;
/** Outputs a unit covers: small enough that the last unit of a batch keeps the other thread waiting little. */
export const UNIT_OUTPUTS = 8;

/** Int32 control words at byte 0 of the shared memory. */
export const Control = {
  /** The job's number (0 before the first); -1 tells the workers to stop. */
  job: 0,
  /** The next unit to claim. */
  next: 1,
  /** Workers done with the current job. */
  done: 2,
  /** Set by a worker that failed. */
  failed: 3,
  units: 4,
  groups: 5,
  outputs: 6,
  inputsAt: 7,
  /** Prepared bytes from one input to the next. */
  stride: 8,
  count: 9,
  tablesAt: 10,
  outputsAt: 11,
  /** Bytes from one output's range to the next. */
  row: 12,
  /** Bytes of the range (of each output) this job covers. */
  length: 13,
} as const;
export const CONTROL_WORDS = 16;
export const CONTROL_BYTES = CONTROL_WORDS * 4;

export type MulAddBatch = (source: number, sourceStride: number, count: number, destination: number, length: number, tables: number, tableStride: number) => void;

/**
 * Claims and computes units of the current job until none is left. A unit
 * is UNIT_OUTPUTS outputs over UNIT_BYTES of the range, every input of the
 * batch added in; units go chunk by chunk, so the threads work on the same
 * inputs' bytes at a time.
 */
export function claimUnits(control: Int32Array, mulAddBatch: MulAddBatch): void {
  const units = control[Control.units];
  const groups = control[Control.groups];
  const outputs = control[Control.outputs];
  const inputsAt = control[Control.inputsAt];
  const stride = control[Control.stride];
  const count = control[Control.count];
  const tablesAt = control[Control.tablesAt];
  const outputsAt = control[Control.outputsAt];
  const row = control[Control.row];
  const length = control[Control.length];
  for (let unit = Atomics.add(control, Control.next, 1); unit < units; unit = Atomics.add(control, Control.next, 1)) {
    const chunk = Math.floor(unit / groups) * UNIT_BYTES;
    const first = (unit % groups) * UNIT_OUTPUTS;
    const bytes = Math.min(UNIT_BYTES, length - chunk);
    const last = Math.min(outputs, first + UNIT_OUTPUTS);
    for (let output = first; output < last; output++) {
      mulAddBatch(inputsAt + chunk * INPUT_SCALE, stride, count, outputsAt + output * row + chunk, bytes, tablesAt + output * count * TABLE_BYTES, TABLE_BYTES);
    }
  }
}
