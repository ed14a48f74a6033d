/**
 * The plain TypeScript kernel, for runtimes without WebAssembly SIMD. Its
 * outputs are split blocks as the SIMD kernel's, and so are its prepared
 * inputs; each coefficient's table is two 256-entry product tables (low
 * byte, high byte of the word), two lookups per word.
 */
import { writeDoublings } from "./gf16.ts";
import type { Kernel } from "./kernel.ts";

/** Table bytes per coefficient (two 256-entry word tables) and prepared bytes per input byte. */
export const PLAIN_SHAPE = { tableBytes: 1024, inputScale: 1 } as const;
const TABLE_BYTES = PLAIN_SHAPE.tableBytes;

export function createPlainKernel(): Kernel {
  let buffer = new ArrayBuffer(1 << 16);
  let bytes = new Uint8Array(buffer);
  let words = new Uint16Array(buffer);
  const basis = new Uint16Array(16);

  return {
    name: "plain",
    tableBytes: TABLE_BYTES,
    inputScale: PLAIN_SHAPE.inputScale,
    bytes: () => bytes,
    reserve(size) {
      if (size <= buffer.byteLength) return;
      const grown = new ArrayBuffer(Math.ceil(Math.max(size, buffer.byteLength * 2) / 1024) * 1024);
      new Uint8Array(grown).set(bytes);
      buffer = grown;
      bytes = new Uint8Array(buffer);
      words = new Uint16Array(buffer);
    },
    writeTables(coefficients, at) {
      for (let k = 0; k < coefficients.length; k++) {
        writeDoublings(coefficients[k], basis);
        // low[b] = c·b and high[b] = c·(b << 8), each entry one XOR from a smaller one.
        const low = (at + k * TABLE_BYTES) >>> 1;
        const high = low + 256;
        words[low] = 0;
        words[high] = 0;
        for (let b = 1; b < 256; b++) {
          const bit = 31 - Math.clz32(b & -b);
          words[low + b] = words[low + (b & (b - 1))] ^ basis[bit];
          words[high + b] = words[high + (b & (b - 1))] ^ basis[bit + 8];
        }
      }
    },
    /** Inputs are split blocks, like the outputs. */
    prepare(source, destination, length) {
      const block = new Uint8Array(32);
      for (let offset = 0; offset < length; offset += 32) {
        for (let j = 0; j < 16; j++) {
          block[j] = bytes[source + offset + 2 * j];
          block[16 + j] = bytes[source + offset + 2 * j + 1];
        }
        bytes.set(block, destination + offset);
      }
    },
    join(source, destination, length) {
      const block = new Uint8Array(32);
      for (let offset = 0; offset < length; offset += 32) {
        for (let j = 0; j < 16; j++) {
          block[2 * j] = bytes[source + offset + j];
          block[2 * j + 1] = bytes[source + offset + 16 + j];
        }
        bytes.set(block, destination + offset);
      }
    },
    mulAddBatch(source, sourceStride, count, destination, length, tables, tableStride) {
      for (let k = 0; k < count; k++) {
        const low = (tables + k * tableStride) >>> 1;
        const high = low + 256;
        const from = source + k * sourceStride;
        for (let offset = 0; offset < length; offset += 32) {
          const s = from + offset;
          const d = destination + offset;
          for (let j = 0; j < 16; j++) {
            const product = words[low + bytes[s + j]] ^ words[high + bytes[s + 16 + j]];
            bytes[d + j] ^= product;
            bytes[d + 16 + j] ^= product >>> 8;
          }
        }
      }
    },
  };
}
