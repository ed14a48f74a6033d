/**
 * The multiply-accumulate kernel interface, and the automatic choice between
 * WebAssembly SIMD and plain TypeScript. Both work on the same memory layout
 * and give identical bytes (a test checks it):
 * - slices are processed in 32-byte blocks of sixteen 16-bit words; inputs
 *   are `prepare`d once into the kernel's form (`inputScale` bytes per byte),
 *   outputs are kept "split": the 16 low bytes, then the 16 high bytes
 *   (`join` converts them to PAR2's little-endian words; zeros need no
 *   converting);
 * - each coefficient has a table (`tableBytes` long) written by `writeTables`;
 * - `mulAddBatch` adds coefficient·source into one destination for `count`
 *   sources at a stride, the inner loop of encoding and repair.
 */
import { createPlainKernel, PLAIN_SHAPE } from "./kernel-plain.ts";
import { createSimdKernel, SIMD_SHAPE, simdSupported } from "./kernel-simd.ts";

export type KernelName = "simd" | "plain";

export interface Kernel {
  readonly name: KernelName;
  readonly tableBytes: number;
  /** Bytes of kernel memory a prepared input takes per byte of its words. */
  readonly inputScale: number;
  /** The kernel's memory; a new view after `reserve` grows it. */
  bytes(): Uint8Array;
  /** Makes the memory at least `size` bytes. */
  reserve(size: number): void;
  /** Writes the table of coefficients[k] at `at + k * tableBytes`. */
  writeTables(coefficients: Uint16Array, at: number): void;
  /**
   * Little-endian words (`length` bytes, a multiple of 32) → the kernel's
   * input form (`length × inputScale` bytes); the words may lie in the last
   * `length` bytes of the destination (prepared in place).
   */
  prepare(source: number, destination: number, length: number): void;
  /** Split blocks → little-endian words; may work in place. */
  join(source: number, destination: number, length: number): void;
  /** For k < count: destination ^= table(k) · (prepared input at source + k·sourceStride), over `length` bytes of the destination. */
  mulAddBatch(source: number, sourceStride: number, count: number, destination: number, length: number, tables: number, tableStride: number): void;
}

/** `BLAINE_PAR2_KERNEL=plain|simd` forces a kernel (for tests and benchmarks); otherwise SIMD where the runtime has it. */
export function chooseKernel(requested: KernelName | "auto" = "auto"): KernelName {
  const forced = process.env.BLAINE_PAR2_KERNEL;
  const wanted = requested !== "auto" ? requested : forced === "plain" || forced === "simd" ? forced : "auto";
  if (wanted === "plain") return "plain";
  if (wanted === "simd" && !simdSupported()) throw new Error("WebAssembly SIMD is not available in this runtime");
  return simdSupported() ? "simd" : "plain";
}

/** What a kernel's memory layout needs, known without creating one (to plan memory). */
export function kernelShape(name: KernelName): { readonly tableBytes: number; readonly inputScale: number } {
  return name === "simd" ? SIMD_SHAPE : PLAIN_SHAPE;
}

/** `simdModule`: the SIMD kernel compiled by another thread (see simdModule). */
export function createKernel(name: KernelName, simdModule?: WebAssembly.Module): Kernel {
  return name === "simd" ? createSimdKernel({ module: simdModule }) : createPlainKernel();
}
