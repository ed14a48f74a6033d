/**
 * A tiny WebAssembly assembler: just the module sections and the opcodes the
 * SIMD kernel needs. There is no WASM toolchain on the build machines, and a
 * few dozen readable lines beat a checked-in binary blob.
 */

export function unsignedLeb(value: number): number[] {
  const bytes: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    bytes.push(byte);
  } while (value !== 0);
  return bytes;
}

export function signedLeb(value: number): number[] {
  const bytes: number[] = [];
  for (;;) {
    const byte = value & 0x7f;
    value >>= 7;
    const done = (value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0);
    bytes.push(done ? byte : byte | 0x80);
    if (done) return bytes;
  }
}

const I32 = 0x7f;
const V128 = 0x7b;

/** Instruction builders: each returns the bytes of one instruction. */
export const op = {
  localGet: (index: number) => [0x20, ...unsignedLeb(index)],
  localSet: (index: number) => [0x21, ...unsignedLeb(index)],
  i32Const: (value: number) => [0x41, ...signedLeb(value)],
  i32Load16U: (offset = 0) => [0x2f, 0x01, ...unsignedLeb(offset)],
  i32Add: [0x6a],
  i32Sub: [0x6b],
  i32Mul: [0x6c],
  i32And: [0x71],
  i32Xor: [0x73],
  i32Shl: [0x74],
  i32ShrU: [0x76],
  i32GeU: [0x4f],
  i32Eqz: [0x45],
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  br: (depth: number) => [0x0c, ...unsignedLeb(depth)],
  brIf: (depth: number) => [0x0d, ...unsignedLeb(depth)],
  end: [0x0b],
  call: (index: number) => [0x10, ...unsignedLeb(index)],
  v128Load: (offset = 0) => [0xfd, 0x00, 0x04, ...unsignedLeb(offset)],
  v128Store: (offset = 0) => [0xfd, 0x0b, 0x04, ...unsignedLeb(offset)],
  v128Const: (bytes: readonly number[]) => [0xfd, 0x0c, ...bytes],
  i8x16Shuffle: (lanes: readonly number[]) => [0xfd, 0x0d, ...lanes],
  i8x16Swizzle: [0xfd, 0x0e],
  /** Relaxed SIMD: same as swizzle for indices below 16 (all the kernel uses), without the out-of-range fix-up. */
  i8x16RelaxedSwizzle: [0xfd, 0x80, 0x02],
  i8x16Splat: [0xfd, 0x0f],
  i16x8Splat: [0xfd, 0x10],
  v128And: [0xfd, 0x4e],
  v128Xor: [0xfd, 0x51],
  i8x16ShrU: [0xfd, 0x6d],
  i16x8ShrU: [0xfd, 0x8d, 0x01],
} as const;

export interface FunctionDefinition {
  readonly name: string;
  readonly params: number;
  /** Extra locals beyond the parameters. */
  readonly i32Locals: number;
  readonly v128Locals: number;
  readonly body: readonly (readonly number[])[];
}

function section(id: number, content: number[]): number[] {
  return [id, ...unsignedLeb(content.length), ...content];
}

function vector(items: number[][]): number[] {
  return [...unsignedLeb(items.length), ...items.flat()];
}

function name(text: string): number[] {
  const bytes = [...new TextEncoder().encode(text)];
  return [...unsignedLeb(bytes.length), ...bytes];
}

/** Most pages a shared memory may be declared with (4 GiB): a shared memory needs a maximum. */
const MAX_PAGES = 65536;

/**
 * A module importing its memory as env.memory (so the host can size and
 * grow it) and exporting every function; all parameters are i32, no results.
 * `shared`: the memory imported is a shared one (threads work in the same
 * bytes), which WebAssembly types apart from an unshared one.
 */
export function assembleModule(functions: readonly FunctionDefinition[], options: { shared?: boolean } = {}): Uint8Array {
  const arities = [...new Set(functions.map((f) => f.params))];
  const types = arities.map((params) => [0x60, ...unsignedLeb(params), ...Array(params).fill(I32), 0x00]);
  const limits = options.shared ? [0x03, 0x01, ...unsignedLeb(MAX_PAGES)] : [0x00, 0x01];
  const imports = [[...name("env"), ...name("memory"), 0x02, ...limits]];
  const functionTypes = functions.map((f) => unsignedLeb(arities.indexOf(f.params)));
  const exports = functions.map((f, index) => [...name(f.name), 0x00, ...unsignedLeb(index)]);
  const bodies = functions.map((f) => {
    const locals: number[][] = [];
    if (f.i32Locals > 0) locals.push([...unsignedLeb(f.i32Locals), I32]);
    if (f.v128Locals > 0) locals.push([...unsignedLeb(f.v128Locals), V128]);
    const code = [...vector(locals), ...f.body.flat(), ...op.end];
    return [...unsignedLeb(code.length), ...code];
  });
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vector(types)),
    ...section(2, vector(imports)),
    ...section(3, vector(functionTypes)),
    ...section(7, vector(exports)),
    ...section(10, vector(bodies)),
  ]);
}
