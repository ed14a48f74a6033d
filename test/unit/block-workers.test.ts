import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { blockHash, decodeChunk, isZero } from "../../lib/image/store/chunk-format.ts";
import { BlockWorkers } from "../../lib/image/workers/block-workers.ts";
import { randomBytes, textBytes } from "../helpers/image-env.ts";

const BLOCK = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), "blaine-block-workers-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A block of `kind`: random, text-like (compressible), or zeros with one byte set at `at`. */
function block(kind: "random" | "text" | { oneAt: number }): Buffer {
  if (kind === "random") return Buffer.from(randomBytes(BLOCK, 1));
  if (kind === "text") return Buffer.from(textBytes(BLOCK, 1));
  const data = Buffer.alloc(BLOCK);
  data[kind.oneAt] = 7;
  return data;
}

describe("isZero", () => {
  test("only a block of zeros is zeros, wherever its one other byte is", () => {
    expect(isZero(new Uint8Array(0))).toBe(true);
    expect(isZero(new Uint8Array(1))).toBe(true);
    expect(isZero(new Uint8Array(BLOCK))).toBe(true);
    expect(isZero(Uint8Array.of(1))).toBe(false);
    for (const at of [0, 1, BLOCK / 2, BLOCK - 1]) expect(isZero(block({ oneAt: at }))).toBe(false);
    // Every byte equal to the next, but not zeros.
    expect(isZero(new Uint8Array(BLOCK).fill(9))).toBe(false);
  });
});

// The same jobs on a worker thread and, with no thread, on the pool's own (a small change's backup).
describe.each([1, 0])("BlockWorkers with %i threads", (threads) => {
  test("hashes (zeros as null), encodes chunks that decode to the block, and restores a block into a file", async () => {
    const workers = new BlockWorkers(BLOCK, { slots: 6, threads });
    try {
      for (const kind of ["random", "text", { oneAt: BLOCK - 1 }] as const) {
        const data = block(kind);
        const slot = await workers.take(BLOCK);
        slot.set(data);
        expect(await workers.hash(slot)).toBe(blockHash(data));
        const object = await workers.encode(slot, { kind: "zstd", level: 3 });
        // Random data is stored raw; the others compressed.
        expect(object.length < BLOCK).toBe(kind !== "random");
        expect(Buffer.from(await decodeChunk(Buffer.from(object))).equals(data)).toBe(true);
        const copy = Buffer.from(object);
        const target = join(dir, `restored-${threads}-${typeof kind === "string" ? kind : "one"}`);
        const fd = openSync(target, "w");
        try {
          const into = await workers.take(BLOCK);
          workers.objectSpace(into).set(copy);
          expect(await workers.restore(into, { hash: blockHash(data), objectLength: copy.length }, { fd, position: 4096 })).toBeUndefined();
          workers.give(into);
        } finally {
          closeSync(fd);
        }
        expect(readFileSync(target).subarray(4096).equals(data)).toBe(true);
        workers.give(slot);
      }
      const zeros = await workers.take(BLOCK);
      zeros.fill(0);
      expect(await workers.hash(zeros)).toBeNull();
      workers.give(zeros);
    } finally {
      await workers.close();
    }
  });

  test("a damaged chunk is a problem, not a write; a target that cannot be written rejects with its errno code", async () => {
    const workers = new BlockWorkers(BLOCK, { slots: 6, threads });
    try {
      const data = block("text");
      const slot = await workers.take(BLOCK);
      slot.set(data);
      const object = Buffer.from(await workers.encode(slot, { kind: "zstd", level: 3 }));
      object[object.length - 1] ^= 0xff;
      const into = await workers.take(BLOCK);
      workers.objectSpace(into).set(object);
      const target = join(dir, `damaged-${threads}`);
      const fd = openSync(target, "w");
      try {
        expect(await workers.restore(into, { hash: blockHash(data), objectLength: object.length }, { fd, position: 0 })).toMatch(/^chunk damaged/);
      } finally {
        closeSync(fd);
      }
      expect(readFileSync(target).length).toBe(0);
      workers.objectSpace(into).set(Buffer.from(await workers.encode(slot, { kind: "zstd", level: 3 })));
      const readOnly = openSync(target, "r");
      try {
        const failed = workers.restore(into, { hash: blockHash(data), objectLength: object.length }, { fd: readOnly, position: 0 });
        // Settled by a worker's message: bun test's expect(…).rejects waited without running the event loop.
        expect(await failed.then(() => undefined, (error: unknown) => error)).toMatchObject({ code: "EBADF" });
      } finally {
        closeSync(readOnly);
      }
    } finally {
      await workers.close();
    }
  });
});
