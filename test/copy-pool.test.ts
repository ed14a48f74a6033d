import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CopyPool } from "../lib/copy/copy-pool.ts";
import { tempDir } from "./helpers/fixture.ts";

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
});
