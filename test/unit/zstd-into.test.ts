import { describe, expect, test } from "bun:test";
import { ptr } from "bun:ffi";
import { BunZstdInto, LibzstdInto, openZstdInto, type ZstdInto } from "../../lib/image/store/zstd-into.ts";
import { randomBytes, textBytes } from "../helpers/image-env.ts";

const BLOCK = 1024 * 1024;

// This thread's choice: libzstd where it loads (Debian's libzstd1, as CI installs it).
const chosen = openZstdInto();
const noLibzstd = chosen instanceof LibzstdInto ? undefined : "libzstd.so.1 cannot be loaded here";
if (noLibzstd) console.log(`skipped libzstd's side of the zstd tests: ${noLibzstd}`);
const implementations: Record<string, ZstdInto> = noLibzstd ? { bun: new BunZstdInto() } : { libzstd: chosen, bun: new BunZstdInto() };
const pairs = Object.keys(implementations).flatMap((writer) => Object.keys(implementations).map((reader) => [writer, reader] as const));

/** Shared memory as a block pool has it: the block at 0, room for its frame at BLOCK, a block decoded at 2 × BLOCK. */
function poolMemory(): { memory: Buffer; base: number } {
  const memory = Buffer.from(new SharedArrayBuffer(3 * BLOCK + 4096));
  return { memory, base: ptr(memory) };
}

describe.each(pairs)("zstd written by %s, read by %s", (writer, reader) => {
  test("a compressible block's frame decodes to the block, in the caller's memory, and is a zstd CLI frame", () => {
    const { memory, base } = poolMemory();
    const block = textBytes(BLOCK, 3);
    memory.set(block, 0);
    const packed = implementations[writer].compress(base + BLOCK, BLOCK - 1, base, BLOCK, 3);
    expect(packed).toBeGreaterThan(0);
    expect(packed as number).toBeLessThan(BLOCK / 10);
    const frame = memory.subarray(BLOCK, BLOCK + (packed as number));
    expect(Buffer.from(Bun.zstdDecompressSync(frame)).equals(block)).toBe(true);
    expect(implementations[reader].decompress(base + 2 * BLOCK, BLOCK, base + BLOCK, packed as number)).toBe(BLOCK);
    expect(memory.subarray(2 * BLOCK, 3 * BLOCK).equals(block)).toBe(true);
  });

  test("a frame larger than the capacity, a damaged frame and a block larger than the capacity are errors, not lengths", () => {
    const { memory, base } = poolMemory();
    memory.set(textBytes(BLOCK, 4), 0);
    const packed = implementations[writer].compress(base + BLOCK, BLOCK - 1, base, BLOCK, 3) as number;
    // Too little room for the frame: undefined (the probes' "does not shrink"). Written elsewhere: libzstd leaves
    // what it began writing there.
    expect(implementations[writer].compress(base + 2 * BLOCK, packed - 1, base, BLOCK, 3)).toBeUndefined();
    expect(implementations[reader].decompress(base + 2 * BLOCK, BLOCK - 1, base + BLOCK, packed)).toBe("Destination buffer is too small");
    memory[BLOCK + packed - 1] ^= 0xff;
    expect(typeof implementations[reader].decompress(base + 2 * BLOCK, BLOCK, base + BLOCK, packed)).toBe("string");
  });
});

describe.each(Object.keys(implementations))("zstd by %s", (name) => {
  test("random data does not fit in less than its length: undefined, so the block is stored raw", () => {
    const { memory, base } = poolMemory();
    memory.set(randomBytes(BLOCK, 5), 0);
    expect(implementations[name].compress(base + BLOCK, BLOCK - 1, base, BLOCK, 3)).toBeUndefined();
    // A probe's window alike (32 KiB, 3 % to gain).
    expect(implementations[name].compress(base + BLOCK, Math.floor(32768 * 0.97), base, 32768, 3)).toBeUndefined();
  });
});
