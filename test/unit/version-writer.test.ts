import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeVersionBlocks } from "../../lib/image/stages/version-writer.ts";
import type { ImageCatalog } from "../../lib/image/catalog/image-catalog.ts";
import type { EncodedBlock } from "../../lib/image/stages/types.ts";

/** A block as storeChunks yields it: stored by this backup (storedSize set) or only referenced. */
function block(index: number, stored: boolean): EncodedBlock {
  const hash = index.toString(16).padStart(64, "0");
  return { index, offset: index * 4096, length: 4096, hash, data: null, action: stored ? "store" : "reference", object: null, ...(stored ? { storedSize: 100 } : {}) };
}

async function* items(list: EncodedBlock[]): AsyncGenerator<EncodedBlock> {
  yield* list;
}

const strace = Bun.which("strace");
if (!strace) console.log("skipped: the directory store's fsync test needs strace (Debian package strace)");

describe("the version writer and the store's durability", () => {
  test("TestStoreFlushedBeforeRowsNamingNewChunks: a batch naming chunks stored by this backup is recorded only after the store's flush", async () => {
    const calls: string[] = [];
    const catalog = { writeBlocks: async (_uid: string, rows: unknown[]) => void calls.push(`rows ${rows.length}`) } as unknown as ImageCatalog;
    const store = { flush: async () => void calls.push("flush") };
    await writeVersionBlocks(items([block(0, true), block(1, false), block(2, true)]), { catalog, uid: "v1", store, batchSize: 2 });
    expect(calls).toEqual(["flush", "rows 2", "flush", "rows 1"]);
  });

  test("TestReferencedOnlyBatchNeedsNoFlush: a batch whose chunks were all stored before is recorded without a flush", async () => {
    const calls: string[] = [];
    const catalog = { writeBlocks: async () => void calls.push("rows") } as unknown as ImageCatalog;
    await writeVersionBlocks(items([block(0, false), block(1, false)]), { catalog, uid: "v1", store: { flush: async () => void calls.push("flush") } });
    expect(calls).toEqual(["rows"]);
  });

  test.skipIf(!strace)("TestDirectoryStoreFlushSyncsEachChunkDirectory: the directory store's flush fsyncs every chunk directory it renamed into, after the renames (seen by strace)", () => {
    const dir = mkdtempSync("/tmp/blaine-flush-");
    try {
      const script = join(dir, "put.ts");
      const store = join(import.meta.dir, "..", "..", "lib", "image", "store", "directory-store.ts");
      writeFileSync(
        script,
        `import { DirectoryStore } from ${JSON.stringify(store)};
const store = DirectoryStore.open(${JSON.stringify(join(dir, "store"))}, true);
for (const hash of ["aa${"0".repeat(62)}", "aa${"1".repeat(62)}", "bb${"0".repeat(62)}"]) await store.putChunk(hash, new Uint8Array([1, 2, 3]));
console.error("--- flush");
await store.flush();
`,
      );
      const traced = Bun.spawnSync([strace as string, "-f", "-qq", "-y", "-e", "trace=fsync,rename,renameat,renameat2,write", "bun", script]);
      const log = traced.stderr.toString();
      expect(traced.exitCode).toBe(0);
      const afterFlush = log.slice(log.indexOf("--- flush"));
      const chunks = join(dir, "store", "chunks");
      // The directories are fsynced at once, so strace may show a call as "<unfinished ...>" and resumed later.
      const fsyncOf = (sub: string) => new RegExp(`fsync\\(\\d+<${join(chunks, sub).replaceAll("/", "\\/")}>(\\)| <unfinished)`, "g");
      for (const sub of ["aa", "bb"]) expect(afterFlush).toMatch(fsyncOf(sub));
      expect(afterFlush.match(fsyncOf("aa"))).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
