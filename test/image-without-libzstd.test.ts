import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readChunkHeader } from "../lib/image/store/chunk-format.ts";
import { blaine, whyNotWithoutLibzstd } from "./helpers/cli.ts";
import { MiB, hashOf, randomBytes, sameBytes, textBytes, writeAt } from "./helpers/image-env.ts";

/**
 * Block images where libzstd.so.1 cannot be loaded: the block jobs fall
 * back to Bun's built-in zstd (lib/image/store/zstd-into.ts). The child
 * runs in a mount namespace with /dev/null over the library's file, as on
 * a system without Debian's libzstd1; its frames and libzstd's are read
 * by each other. 1 MiB blocks: long enough for the incompressibility probes.
 */
const BS = ["--block-size", "1M"];
const noUnshare = whyNotWithoutLibzstd();
if (noUnshare) console.log(`skipped the image tests without libzstd: ${noUnshare}`);

const root = mkdtempSync("/tmp/blaine-no-libzstd-");
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A 6 MiB image: text (compresses), random (stored raw), a hole, random, text. */
function makeImage(path: string): Uint8Array[] {
  const blocks = [textBytes(MiB, 1), textBytes(MiB, 2), randomBytes(MiB, 3), undefined, randomBytes(MiB, 4), textBytes(MiB, 5)];
  writeFileSync(path, "");
  truncateSync(path, blocks.length * MiB);
  blocks.forEach((block, index) => block && writeAt(path, index * MiB, block));
  return blocks.filter((block): block is Uint8Array => block !== undefined);
}

/** Each block's chunk header in `store`: text compressed (kind 1), random raw (kind 0). */
function expectKinds(store: string, blocks: Uint8Array[]): void {
  const kinds = blocks.map((block) => {
    const hash = hashOf(block);
    return readChunkHeader(readFileSync(join(store, "chunks", hash.slice(0, 2), hash))).kind;
  });
  expect(kinds).toEqual([1, 1, 0, 0, 1]);
}

test.skipIf(noUnshare !== undefined)(
  "without libzstd a backup compresses with Bun's zstd (random blocks raw) and restores through libzstd, and the other way round; a small change's jobs on the main thread too",
  async () => {
    const source = join(root, "vm.img");
    const blocks = makeImage(source);
    const run = async (store: string, args: string[], withoutLibzstd: boolean) => {
      const result = await blaine(["image", ...args, "--db", join(root, `${store}.db`), "--store", join(root, store), ...BS, "--json"], { withoutLibzstd });
      if (result.exitCode !== 0) throw new Error(`image ${args[0]} exited ${result.exitCode}: ${result.stderr}`);
      return result;
    };

    // Written without libzstd (the block workers' threads), read with it.
    const fallback = await run("fallback-store", ["backup", source, "vm"], true);
    expectKinds(join(root, "fallback-store"), blocks);
    const restoredWith = join(root, "restored-with-libzstd.img");
    const restore = await run("fallback-store", ["restore", fallback.json.uid, restoredWith], false);
    expect(sameBytes(source, restoredWith)).toBe(true);

    // Written with libzstd, read without it.
    const native = await run("native-store", ["backup", source, "vm"], false);
    expectKinds(join(root, "native-store"), blocks);
    const restoredWithout = join(root, "restored-without-libzstd.img");
    const back = await run("native-store", ["restore", native.json.uid, restoredWithout], true);
    expect(sameBytes(source, restoredWithout)).toBe(true);

    // A hinted change of one block: a small change, its jobs on the main thread (no worker), without libzstd.
    const changed = textBytes(MiB, 6);
    writeAt(source, 1 * MiB, changed);
    const hints = join(root, "diff.json");
    writeFileSync(hints, JSON.stringify([{ offset: MiB, length: MiB, exists: "true" }]));
    const small = await run("fallback-store", ["backup", source, "vm", "--from", fallback.json.uid, "--hints", hints], true);
    expect(small.json.bytesWritten).toBeGreaterThan(0);
    expect(small.json.bytesWritten).toBeLessThan(MiB / 10);
    for (const [target, withoutLibzstd] of [[join(root, "changed-with.img"), false], [join(root, "changed-without.img"), true]] as const) {
      const result = await run("fallback-store", ["restore", small.json.uid, target], withoutLibzstd);
      expect(sameBytes(source, target)).toBe(true);
    }
  },
  120_000,
);
