import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CopyPool } from "../lib/copy/copy-pool.ts";
import type { FileChecksums } from "../lib/copy/digest-ring.ts";
import { tempDir } from "./helpers/fixture.ts";
import { canMount, mountTmpfs } from "./helpers/mounts.ts";

/** The checksums a copy must give, computed here from the whole file at once (the last block zero-padded). */
function expectedChecksums(bytes: Uint8Array, blockSize: number): FileChecksums {
  const md5 = (data: Uint8Array) => new Uint8Array(new Bun.CryptoHasher("md5").update(data).digest());
  const blocks = Math.ceil(bytes.length / blockSize);
  const blockMd5s = new Uint8Array(blocks * 16);
  const blockCrcs = new Uint32Array(blocks);
  for (let k = 0; k < blocks; k++) {
    const block = new Uint8Array(blockSize);
    block.set(bytes.subarray(k * blockSize, (k + 1) * blockSize));
    blockMd5s.set(md5(block), k * 16);
    blockCrcs[k] = Bun.hash.crc32(block) >>> 0;
  }
  return { blockSize, md5: md5(bytes), md5First16k: md5(bytes.subarray(0, 16384)), blockMd5s, blockCrcs };
}

setDefaultTimeout(120_000);

describe("CopyPool", () => {
  test("copies and hashes on its workers; once closed, a job is refused (rejected, not thrown) and nothing hangs", async () => {
    const dir = tempDir();
    const pool = new CopyPool(2);
    try {
      const source = join(dir.path, "source");
      writeFileSync(source, "the bytes of a small file");
      const mtimeMs = statSync(source).mtimeMs;
      const job = (target: string) => ({ source, target: join(dir.path, target), algorithm: "sha1" as const, mode: 0o640, mtimeMs, expectedSize: 25 });
      const outcome = await pool.copy(job("first"));
      expect(outcome.size).toBe(25);
      expect(outcome.hash).toBe(`sha1:${new Bun.CryptoHasher("sha1").update("the bytes of a small file").digest("hex")}`);
      expect(readFileSync(join(dir.path, "first"), "utf8")).toBe("the bytes of a small file");
      const [many] = await pool.copyMany([job("second")]);
      expect(many.ok).toBe(true);

      pool.close();
      const afterClose = pool.copy(job("third"));
      expect(afterClose).toBeInstanceOf(Promise);
      await expect(afterClose).rejects.toThrow("copy pool closed");
      await expect(pool.placeAll(dir.path, [{ temp: join(dir.path, "first"), target: join(dir.path, "placed") }])).rejects.toThrow("copy pool closed");
    } finally {
      pool.close();
      dir.cleanup();
    }
  });

  test("a copy asked for checksums gets the file's MD5 and each block's MD5 and CRC32 from its one read (blocks across chunks, the last padded)", async () => {
    const dir = tempDir();
    const pool = new CopyPool(1);
    try {
      // Sizes around the copy's 1 MiB chunks: a whole number of them, blocks that straddle them, a file shorter than one block, a few bytes.
      const cases = [
        { size: 3 * 1024 * 1024, blockSize: 1024 * 1024 },
        { size: 2.5 * 1024 * 1024 + 7, blockSize: 700_004 },
        { size: 1_500_000, blockSize: 4_000_000 },
        { size: 5, blockSize: 1024 },
      ];
      for (const [i, { size, blockSize }] of cases.entries()) {
        const bytes = crypto.getRandomValues(new Uint8Array(size));
        const source = join(dir.path, `source-${i}`);
        writeFileSync(source, bytes);
        const outcome = await pool.copy({
          source, target: join(dir.path, `copy-${i}`), algorithm: "sha1", mode: 0o644, mtimeMs: statSync(source).mtimeMs, expectedSize: size, checksums: { blockSize },
        });
        expect(outcome.hash).toBe(`sha1:${new Bun.CryptoHasher("sha1").update(bytes).digest("hex")}`);
        expect(outcome.checksums).toEqual(expectedChecksums(bytes, blockSize));
        expect(new Uint8Array(readFileSync(join(dir.path, `copy-${i}`)))).toEqual(bytes);
      }
    } finally {
      pool.close();
      dir.cleanup();
    }
  });

  test.skipIf(!canMount())("a copy with checksums that fails mid-file (a full disk) frees its digest threads: the next copy gets its checksums", async () => {
    const dir = tempDir();
    const unmount = mountTmpfs(join(dir.path, "small"), "4m");
    const pool = new CopyPool(1);
    try {
      const big = crypto.getRandomValues(new Uint8Array(24 * 1024 * 1024));
      writeFileSync(join(dir.path, "big"), big);
      const mtimeMs = statSync(join(dir.path, "big")).mtimeMs;
      const failed = pool.copy({
        source: join(dir.path, "big"), target: join(dir.path, "small", "big"), algorithm: "sha1", mode: 0o644, mtimeMs, expectedSize: big.length, checksums: { blockSize: 1 << 20 },
      });
      await expect(failed).rejects.toMatchObject({ code: "ENOSPC" });
      const outcome = await pool.copy({
        source: join(dir.path, "big"), target: join(dir.path, "again"), algorithm: "sha1", mode: 0o644, mtimeMs, expectedSize: big.length, checksums: { blockSize: 3_000_000 },
      });
      expect(outcome.checksums).toEqual(expectedChecksums(big, 3_000_000));
    } finally {
      pool.close();
      unmount();
      dir.cleanup();
    }
  });
});
