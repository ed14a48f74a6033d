import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import imageBackup from "../../pipelines/image-backup.ts";
import { finishImageBackup, openImageBackup, type ImageBackupRequest } from "../../lib/image/backup-run.ts";
import { ImageCatalog } from "../../lib/image/catalog/image-catalog.ts";
import { openImageSql } from "../../lib/image/catalog/sql.ts";
import { wholeVersionDoc } from "../../lib/image/commands/version-source.ts";
import { openStore } from "../../lib/image/store/chunk-store.ts";
import { parseVersionDoc } from "../../lib/image/version-doc.ts";
import { blaine } from "../helpers/cli.ts";
import { hashOf, randomBytes, writeAt } from "../helpers/image-env.ts";

/**
 * A backup told which blocks changed by metadata it trusts (a volume send's
 * thin_delta: `read` written, `zero` freed), on a real SQLite catalog and
 * directory store, each version restored by the real CLI. LVM thin needs
 * device-mapper, which a test machine may lack; this is the same backup a
 * thin volume's send makes from its delta.
 */
const BLOCK = 64 * 1024;
let dir: string;
beforeEach(() => {
  dir = mkdtempSync("/tmp/blaine-trusted-");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function backup(request: Omit<ImageBackupRequest, "name" | "blockSize" | "compression">): Promise<string> {
  const catalog = new ImageCatalog(await openImageSql(join(dir, "images.db"), { create: true }));
  const store = await openStore(join(dir, "store"), { create: true });
  try {
    const run = await openImageBackup(catalog, store, { ...request, name: "vm", blockSize: BLOCK, compression: { kind: "none" } });
    await imageBackup(run);
    return (await finishImageBackup(run)).uid;
  } finally {
    await store.close();
    await catalog.close();
  }
}

async function restored(uid: string): Promise<Buffer> {
  const out = join(dir, `restored-${uid}.img`);
  const result = await blaine(["image", "restore", uid, out, "--db", join(dir, "images.db"), "--store", join(dir, "store")]);
  expect(result.stderr).toBe("");
  expect(result.exitCode).toBe(0);
  return readFileSync(out);
}

test("TestTrustedZeroBlocks: blocks the metadata says were freed (zeros now) are zeros in the new version, not the base's data", async () => {
  const source = join(dir, "vm.img");
  writeFileSync(source, randomBytes(4 * BLOCK, 1));
  const first = await backup({ source });
  // Block 1 rewritten, block 2 discarded (a thin pool's left_only range: it reads zeros now).
  writeAt(source, BLOCK, randomBytes(BLOCK, 2));
  writeAt(source, 2 * BLOCK, new Uint8Array(BLOCK));
  const second = await backup({ source, from: first, changed: { read: new Set([1]), zero: new Set([2]) } });
  expect((await restored(second)).equals(readFileSync(source))).toBe(true);
  // The store's copy lists the blocks read (the zeros over the base's data too) and inherits the rest: made whole
  // through the base's, it says what the catalog's export does.
  const exported = join(dir, "exported.json");
  expect((await blaine(["image", "export", second, exported, "--db", join(dir, "images.db"), "--store", join(dir, "store")])).exitCode).toBe(0);
  const stored = parseVersionDoc(readFileSync(join(dir, "store", "versions", `${second}.json`), "utf8"), "stored");
  expect(stored.blocks.map((block) => [block.idx, block.hash])).toEqual([[1, hashOf(randomBytes(BLOCK, 2))], [2, null]]);
  const whole = await wholeVersionDoc(await openStore(join(dir, "store"), { create: false }), stored);
  expect(whole).toEqual(parseVersionDoc(readFileSync(exported, "utf8"), "exported"));
});
