/**
 * The WebAssembly SIMD kernel, assembled at load time by wasm-emitter.ts.
 * A GF(2^16) product by a constant is the XOR of four nibble products; for
 * 16 words at once, i8x16.swizzle looks up each nibble's low and high
 * product bytes in 16-byte tables (8 swizzles per 32 bytes).
 *
 * Inputs are prepared once into nibbles, a byte each (64 bytes per 32): an
 * input is multiplied by every output's coefficient, so splitting its words
 * into nibbles once instead of per product leaves the inner loop with only
 * the lookups, their XORs and the output's load and store (~30 % faster).
 * Outputs stay "split": each 32-byte block is its 16 low bytes, then its 16
 * high bytes.
 */
import type { Kernel } from "./kernel.ts";
import { assembleModule, op, type FunctionDefinition } from "./wasm-emitter.ts";

/** Table bytes per coefficient and prepared bytes per input byte (nibbles, a byte each). */
export const SIMD_SHAPE = { tableBytes: 128, inputScale: 2 } as const;
const TABLE_BYTES = SIMD_SHAPE.tableBytes;
const PAGE = 65536;
const EVEN_LANES = Array.from({ length: 16 }, (_, i) => 2 * i);
const ODD_LANES = Array.from({ length: 16 }, (_, i) => 2 * i + 1);
const FIRST_INTERLEAVE = Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? i / 2 : 16 + (i - 1) / 2));
const SECOND_INTERLEAVE = FIRST_INTERLEAVE.map((lane) => lane + 8);

/** A loop over blocks: `while (p < end) { body; p += step; q += step' }`. */
function blockLoop(pointer: number, end: number, advance: readonly (readonly [number, number])[], body: readonly (readonly number[])[]): number[][] {
  return [
    op.block, op.loop,
    op.localGet(pointer), op.localGet(end), op.i32GeU, op.brIf(1),
    ...body,
    ...advance.flatMap(([local, step]) => [op.localGet(local), op.i32Const(step), op.i32Add, op.localSet(local)]),
    op.br(0), op.end, op.end,
  ] as number[][];
}

/** join(source, destination, length): split blocks → little-endian words; both vectors are loaded before storing, so in place works. */
function joinFunction(): FunctionDefinition {
  const [source, destination, length, end, a, b] = [0, 1, 2, 3, 4, 5];
  return {
    name: "join", params: 3, i32Locals: 1, v128Locals: 2,
    body: [
      op.localGet(source), op.localGet(length), op.i32Add, op.localSet(end),
      ...blockLoop(source, end, [[source, 32], [destination, 32]], [
        op.localGet(source), op.v128Load(0), op.localSet(a),
        op.localGet(source), op.v128Load(16), op.localSet(b),
        op.localGet(destination), op.localGet(a), op.localGet(b), op.i8x16Shuffle(FIRST_INTERLEAVE), op.v128Store(0),
        op.localGet(destination), op.localGet(a), op.localGet(b), op.i8x16Shuffle(SECOND_INTERLEAVE), op.v128Store(16),
      ]),
    ],
  };
}

/**
 * prepare(source, destination, length): each 32 bytes of little-endian words
 * become 64 bytes of nibbles: bits 0-3, 4-7, 8-11, 12-15 of the 16 words.
 * A block's bytes are loaded before its nibbles are stored, so the words may
 * lie in the upper half of the destination (expanded in place).
 */
function prepareFunction(): FunctionDefinition {
  const [source, destination, length, end, a, b, low, high, mask] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  // High nibbles by a 16-bit shift and the mask: two x86 instructions; i8x16.shr_u has no single one and costs more.
  const nibble = (from: number, shifted: boolean, offset: number) => [
    op.localGet(destination), op.localGet(from), ...(shifted ? [op.i32Const(4), op.i16x8ShrU] : []), op.localGet(mask), op.v128And, op.v128Store(offset),
  ];
  return {
    name: "prepare", params: 3, i32Locals: 1, v128Locals: 5,
    body: [
      op.i32Const(15), op.i8x16Splat, op.localSet(mask),
      op.localGet(source), op.localGet(length), op.i32Add, op.localSet(end),
      ...blockLoop(source, end, [[source, 32], [destination, 64]], [
        op.localGet(source), op.v128Load(0), op.localSet(a),
        op.localGet(source), op.v128Load(16), op.localSet(b),
        op.localGet(a), op.localGet(b), op.i8x16Shuffle(EVEN_LANES), op.localSet(low),
        op.localGet(a), op.localGet(b), op.i8x16Shuffle(ODD_LANES), op.localSet(high),
        ...nibble(low, false, 0), ...nibble(low, true, 16), ...nibble(high, false, 32), ...nibble(high, true, 48),
      ]),
    ],
  };
}

/**
 * tables(coefficients, count, destination): for each 16-bit coefficient c,
 * the products c·(n << 4p) for nibbles n and positions p, as eight 16-byte
 * tables (position p's low bytes at 32p, high bytes at 32p + 16). Per
 * position, the eight products with n < 8 are XORs of c·2^(4p+bit) masked by
 * n's bits, computed as 16-bit lanes; n ≥ 8 adds c·2^(4p+3); then the low
 * and high bytes are gathered by shuffles. Reads coefficient k before
 * writing table k, so the coefficients may lie at the tables' end.
 */
function tablesFunction(): FunctionDefinition {
  const [coefficients, count, destination] = [0, 1, 2];
  const doubling = (bit: number) => 3 + bit; // i32 locals: c·2^bit
  const [v, w] = [19, 20];
  const laneMask = (bit: number) => Array.from({ length: 8 }, (_, n) => ((n >> bit) & 1 ? [0xff, 0xff] : [0, 0])).flat();
  const body: (readonly number[])[] = [op.localGet(coefficients), op.i32Load16U(0), op.localSet(doubling(0))];
  // c·2^(bit+1) = (c·2^bit << 1), reduced by the polynomial 0x1100B when bit 16 comes out.
  for (let bit = 0; bit < 15; bit++) {
    body.push(
      op.localGet(doubling(bit)), op.i32Const(1), op.i32Shl,
      op.i32Const(0), op.localGet(doubling(bit)), op.i32Const(15), op.i32ShrU, op.i32Sub, op.i32Const(0x1100b), op.i32And,
      op.i32Xor, op.localSet(doubling(bit + 1)),
    );
  }
  for (let position = 0; position < 4; position++) {
    const term = (bit: number) => [op.localGet(doubling(4 * position + bit)), op.i16x8Splat, op.v128Const(laneMask(bit)), op.v128And];
    body.push(...term(0), ...term(1), op.v128Xor, ...term(2), op.v128Xor, op.localSet(v));
    body.push(op.localGet(v), op.localGet(doubling(4 * position + 3)), op.i16x8Splat, op.v128Xor, op.localSet(w));
    body.push(op.localGet(destination), op.localGet(v), op.localGet(w), op.i8x16Shuffle(EVEN_LANES), op.v128Store(32 * position));
    body.push(op.localGet(destination), op.localGet(v), op.localGet(w), op.i8x16Shuffle(ODD_LANES), op.v128Store(32 * position + 16));
  }
  return {
    name: "tables", params: 3, i32Locals: 16, v128Locals: 2,
    body: [
      op.block, op.loop,
      op.localGet(count), op.i32Eqz, op.brIf(1),
      ...body,
      op.localGet(coefficients), op.i32Const(2), op.i32Add, op.localSet(coefficients),
      op.localGet(destination), op.i32Const(TABLE_BYTES), op.i32Add, op.localSet(destination),
      op.localGet(count), op.i32Const(-1), op.i32Add, op.localSet(count),
      op.br(0), op.end, op.end,
    ],
  };
}

/**
 * mulAdd(source, destination, length, table): destination ^= c · source over
 * `length` split bytes of destination (2 × length prepared bytes of source);
 * the eight tables live in locals, the nibbles are loaded as they are used.
 * UNROLL blocks per iteration (4 measured ~5 % faster than 1), then the rest one by one.
 */
const UNROLL = 4;
function mulAddFunction(swizzle: readonly number[]): FunctionDefinition {
  const [source, destination, length, table, end, pairsEnd] = [0, 1, 2, 3, 4, 5];
  const t = (k: number) => 6 + k; // t(2p + half): position p's low (half 0) or high (half 1) product bytes
  const block = (offset: number) =>
    [0, 1].map((half) => [
      op.localGet(destination),
      op.localGet(destination), op.v128Load(32 * offset + 16 * half),
      ...[0, 1, 2, 3].flatMap((p) => [op.localGet(t(2 * p + half)), op.localGet(source), op.v128Load(64 * offset + 16 * p), swizzle, op.v128Xor]),
      op.v128Store(32 * offset + 16 * half),
    ]).flat();
  return {
    name: "mulAdd", params: 4, i32Locals: 2, v128Locals: 8,
    body: [
      ...Array.from({ length: 8 }, (_, k) => [op.localGet(table), op.v128Load(16 * k), op.localSet(t(k))]).flat(),
      op.localGet(destination), op.localGet(length), op.i32Add, op.localSet(end),
      op.localGet(destination), op.localGet(length), op.i32Const(-32 * UNROLL), op.i32And, op.i32Add, op.localSet(pairsEnd),
      ...blockLoop(destination, pairsEnd, [[source, 64 * UNROLL], [destination, 32 * UNROLL]], Array.from({ length: UNROLL }, (_, u) => block(u)).flat() as number[][]),
      ...blockLoop(destination, end, [[source, 64], [destination, 32]], block(0) as number[][]),
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

function assembleKernel(swizzle: readonly number[], shared = false): Uint8Array {
  return assembleModule([prepareFunction(), joinFunction(), tablesFunction(), mulAddFunction(swizzle), mulAddBatchFunction(3)], { shared });
}

let moduleBytes: Uint8Array | null | undefined;
let moduleSwizzle: readonly number[] | undefined;
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
    if (WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)) {
      moduleSwizzle = swizzle;
      return (moduleBytes = bytes);
    }
  }
  return moduleBytes;
}

export function simdSupported(): boolean {
  return kernelModuleBytes() !== null;
}

let compiled: WebAssembly.Module | undefined;
/**
 * The kernel compiled once in this thread, for worker threads to
 * instantiate (a module travels in a message): assembling and compiling it
 * again in each worker cost each some megabytes of JIT memory.
 */
export function simdModule(): WebAssembly.Module {
  const bytes = kernelModuleBytes();
  if (!bytes) throw new Error("WebAssembly SIMD is not available in this runtime");
  return (compiled ??= new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>));
}

let compiledShared: WebAssembly.Module | undefined;
/**
 * The same kernel importing a shared memory (see shared-multiply.ts), with
 * the swizzle simdModule chose; compiled once per process.
 */
export function simdSharedModule(): WebAssembly.Module {
  if (!kernelModuleBytes()) throw new Error("WebAssembly SIMD is not available in this runtime");
  return (compiledShared ??= new WebAssembly.Module(assembleKernel(moduleSwizzle!, true) as Uint8Array<ArrayBuffer>));
}

export interface KernelExports {
  prepare(source: number, destination: number, length: number): void;
  join(source: number, destination: number, length: number): void;
  tables(coefficients: number, count: number, destination: number): void;
  mulAddBatch(source: number, sourceStride: number, count: number, destination: number, length: number, tables: number, tableStride: number): void;
}

/**
 * `module`: the kernel as another thread compiled it (simdModule);
 * `swizzle: "strict"` forces plain SIMD's swizzle (to compare with the relaxed one).
 */
export function createSimdKernel(options: { swizzle?: "strict"; module?: WebAssembly.Module } = {}): Kernel {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536 });
  const module =
    options.swizzle === "strict" ? new WebAssembly.Module(assembleKernel(op.i8x16Swizzle) as Uint8Array<ArrayBuffer>) : (options.module ?? simdModule());
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const exports = instance.exports as unknown as KernelExports;
  let bytes = new Uint8Array(memory.buffer);
  return {
    name: "simd",
    tableBytes: TABLE_BYTES,
    inputScale: SIMD_SHAPE.inputScale,
    bytes: () => bytes,
    reserve(size) {
      if (size > memory.buffer.byteLength) {
        memory.grow(Math.ceil((size - memory.buffer.byteLength) / PAGE));
        bytes = new Uint8Array(memory.buffer);
      }
    },
    writeTables(coefficients, at) {
      // The coefficients go at the end of the tables' room (see tablesFunction), as little-endian words.
      const count = coefficients.length;
      const listAt = at + count * (TABLE_BYTES - 2);
      for (let k = 0; k < count; k++) {
        bytes[listAt + 2 * k] = coefficients[k] & 0xff;
        bytes[listAt + 2 * k + 1] = coefficients[k] >>> 8;
      }
      exports.tables(listAt, count, at);
    },
    prepare: (source, destination, length) => exports.prepare(source, destination, length),
    join: (source, destination, length) => exports.join(source, destination, length),
    mulAddBatch: (source, sourceStride, count, destination, length, tables, tableStride) =>
      exports.mulAddBatch(source, sourceStride, count, destination, length, tables, tableStride),
  };
}
