/**
 * The WebAssembly SIMD kernel, assembled at load time by wasm-emitter.ts.
 * A GF(2^16) product by a constant is the XOR of four nibble products; for
 * 16 words at once, i8x16.swizzle looks up each nibble's low and high
 * product bytes in 16-byte tables (8 swizzles per 32 bytes).
 */
import { writeNibbleTables } from "./gf16.ts";
import type { Kernel } from "./kernel.ts";
import { assembleModule, op, type FunctionDefinition } from "./wasm-emitter.ts";

const TABLE_BYTES = 128;
const PAGE = 65536;
const EVEN_LANES = Array.from({ length: 16 }, (_, i) => 2 * i);
const ODD_LANES = Array.from({ length: 16 }, (_, i) => 2 * i + 1);
const FIRST_INTERLEAVE = Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? i / 2 : 16 + (i - 1) / 2));
const SECOND_INTERLEAVE = FIRST_INTERLEAVE.map((lane) => lane + 8);

/** A loop over 32-byte blocks: `while (p < end) { body; p += 32; q += 32 }`. */
function blockLoop(pointer: number, end: number, advance: readonly number[], body: readonly (readonly number[])[]): number[][] {
  return [
    op.block, op.loop,
    op.localGet(pointer), op.localGet(end), op.i32GeU, op.brIf(1),
    ...body,
    ...advance.flatMap((local) => [op.localGet(local), op.i32Const(32), op.i32Add, op.localSet(local)]),
    op.br(0), op.end, op.end,
  ] as number[][];
}

/** split/join: (source, destination, length); locals end, a, b. Both vectors are loaded before storing, so in place works. */
function shuffleFunction(name: string, first: readonly number[], second: readonly number[]): FunctionDefinition {
  const [source, destination, length, end, a, b] = [0, 1, 2, 3, 4, 5];
  return {
    name, params: 3, i32Locals: 1, v128Locals: 2,
    body: [
      op.localGet(source), op.localGet(length), op.i32Add, op.localSet(end),
      ...blockLoop(source, end, [source, destination], [
        op.localGet(source), op.v128Load(0), op.localSet(a),
        op.localGet(source), op.v128Load(16), op.localSet(b),
        op.localGet(destination), op.localGet(a), op.localGet(b), op.i8x16Shuffle(first), op.v128Store(0),
        op.localGet(destination), op.localGet(a), op.localGet(b), op.i8x16Shuffle(second), op.v128Store(16),
      ]),
    ],
  };
}

/**
 * mulAdd(source, destination, length, table): the eight tables and the
 * nibble mask live in locals. (Two blocks per iteration measured no faster.)
 */
function mulAddFunction(swizzle: readonly number[]): FunctionDefinition {
  const [source, destination, length, table, end] = [0, 1, 2, 3, 4];
  const t = (k: number) => 5 + k; // t0..t7: low/high product bytes for nibble positions 0..3
  const [mask, low, high, n0, n1, n2, n3] = [13, 14, 15, 16, 17, 18, 19];
  const productByte = (half: 0 | 1) => [
    op.localGet(t(half)), op.localGet(n0), swizzle,
    op.localGet(t(2 + half)), op.localGet(n1), swizzle, op.v128Xor,
    op.localGet(t(4 + half)), op.localGet(n2), swizzle, op.v128Xor,
    op.localGet(t(6 + half)), op.localGet(n3), swizzle, op.v128Xor,
  ];
  // High nibbles by a 16-bit shift and the mask: two x86 instructions; i8x16.shr_u has no single one and costs more.
  const highNibble = (from: number, to: number) => [op.localGet(from), op.i32Const(4), op.i16x8ShrU, op.localGet(mask), op.v128And, op.localSet(to)];
  const block = (offset: number) => [
    op.localGet(source), op.v128Load(offset), op.localSet(low),
    op.localGet(source), op.v128Load(offset + 16), op.localSet(high),
    op.localGet(low), op.localGet(mask), op.v128And, op.localSet(n0),
    ...highNibble(low, n1),
    op.localGet(high), op.localGet(mask), op.v128And, op.localSet(n2),
    ...highNibble(high, n3),
    op.localGet(destination), op.localGet(destination), op.v128Load(offset), ...productByte(0), op.v128Xor, op.v128Store(offset),
    op.localGet(destination), op.localGet(destination), op.v128Load(offset + 16), ...productByte(1), op.v128Xor, op.v128Store(offset + 16),
  ];
  return {
    name: "mulAdd", params: 4, i32Locals: 1, v128Locals: 15,
    body: [
      ...Array.from({ length: 8 }, (_, k) => [op.localGet(table), op.v128Load(16 * k), op.localSet(t(k))]).flat(),
      op.i32Const(15), op.i8x16Splat, op.localSet(mask),
      op.localGet(source), op.localGet(length), op.i32Add, op.localSet(end),
      ...blockLoop(source, end, [source, destination], block(0)),
    ] as number[][],
  };
}

/** mulAddBatch(source, sourceStride, count, destination, length, tables, tableStride): one call per source. */
function mulAddBatchFunction(mulAddIndex: number): FunctionDefinition {
  const [source, sourceStride, count, destination, length, tables, tableStride] = [0, 1, 2, 3, 4, 5, 6];
  return {
    name: "mulAddBatch", params: 7, i32Locals: 0, v128Locals: 0,
    body: [
      op.block, op.loop,
      op.localGet(count), op.i32Eqz, op.brIf(1),
      op.localGet(source), op.localGet(destination), op.localGet(length), op.localGet(tables), op.call(mulAddIndex),
      op.localGet(source), op.localGet(sourceStride), op.i32Add, op.localSet(source),
      op.localGet(tables), op.localGet(tableStride), op.i32Add, op.localSet(tables),
      op.localGet(count), op.i32Const(-1), op.i32Add, op.localSet(count),
      op.br(0), op.end, op.end,
    ],
  };
}

function assembleKernel(swizzle: readonly number[]): Uint8Array {
  return assembleModule([
    shuffleFunction("split", EVEN_LANES, ODD_LANES),
    shuffleFunction("join", FIRST_INTERLEAVE, SECOND_INTERLEAVE),
    mulAddFunction(swizzle),
    mulAddBatchFunction(2),
  ]);
}

let moduleBytes: Uint8Array | null | undefined;
/**
 * The kernel with relaxed SIMD's swizzle where the runtime has it (JSC
 * does; it skips a saturating add per lookup), else plain SIMD's; null when
 * there is no WebAssembly SIMD at all. Nibbles are below 16, so both give
 * the same bytes.
 */
function kernelModuleBytes(): Uint8Array | null {
  if (moduleBytes !== undefined) return moduleBytes;
  moduleBytes = null;
  if (typeof WebAssembly !== "object") return moduleBytes;
  for (const swizzle of [op.i8x16RelaxedSwizzle, op.i8x16Swizzle]) {
    const bytes = assembleKernel(swizzle);
    if (WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)) return (moduleBytes = bytes);
  }
  return moduleBytes;
}

export function simdSupported(): boolean {
  return kernelModuleBytes() !== null;
}

interface KernelExports {
  split(source: number, destination: number, length: number): void;
  join(source: number, destination: number, length: number): void;
  mulAddBatch(source: number, sourceStride: number, count: number, destination: number, length: number, tables: number, tableStride: number): void;
}

/** `swizzle: "strict"` forces plain SIMD's swizzle (to compare with the relaxed one). */
export function createSimdKernel(options: { swizzle?: "strict" } = {}): Kernel {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536 });
  const moduleCode = options.swizzle === "strict" ? assembleKernel(op.i8x16Swizzle) : kernelModuleBytes();
  if (!moduleCode) throw new Error("WebAssembly SIMD is not available in this runtime");
  const instance = new WebAssembly.Instance(new WebAssembly.Module(moduleCode as Uint8Array<ArrayBuffer>), { env: { memory } });
  const exports = instance.exports as unknown as KernelExports;
  let bytes = new Uint8Array(memory.buffer);
  return {
    name: "simd",
    tableBytes: TABLE_BYTES,
    bytes: () => bytes,
    reserve(size) {
      if (size > memory.buffer.byteLength) {
        memory.grow(Math.ceil((size - memory.buffer.byteLength) / PAGE));
        bytes = new Uint8Array(memory.buffer);
      }
    },
    writeTables(coefficients, at) {
      for (let k = 0; k < coefficients.length; k++) writeNibbleTables(coefficients[k], bytes, at + k * TABLE_BYTES);
    },
    split: (source, destination, length) => exports.split(source, destination, length),
    join: (source, destination, length) => exports.join(source, destination, length),
    mulAddBatch: (source, sourceStride, count, destination, length, tables, tableStride) =>
      exports.mulAddBatch(source, sourceStride, count, destination, length, tables, tableStride),
  };
}
