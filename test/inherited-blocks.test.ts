/**
 * Versions that inherit their base's blocks (image-catalog.ts inheritsUid):
 * random histories of backups over random bases (full reads and trusted
 * change lists, images that grow and shrink, blocks zeroed over data) and
 * removals of one or several versions at a time, on SQLite and on a real
 * PostgreSQL. After every step each remaining version's blocks, from the
 * catalog and from the store's documents alone, are those of the image it
 * was made from, and nothing is left behind (rows of removed versions,
 * document notes, documents naming a missing parent).
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { abandonImageBackup, finishImageBackup, openImageBackup } from "../lib/image/backup-run.ts";
import { ImageCatalog, MAX_INHERITANCE_DEPTH, type VersionRow } from "../lib/image/catalog/image-catalog.ts";
import { openImageSql } from "../lib/image/catalog/sql.ts";
import { wholeVersionDoc } from "../lib/image/commands/version-source.ts";
import { openStore, type ChunkStore } from "../lib/image/store/chunk-store.ts";
import { parseVersionDoc } from "../lib/image/version-doc.ts";
import { removeVersionAndDoc, settleVersionDocs } from "../lib/image/version-removal.ts";
import imageBackup from "../pipelines/image-backup.ts";
import { hashOf, randomBytes } from "./helpers/image-env.ts";
import { postgresMissing, startPostgres, type TestPostgres } from "./helpers/postgres.ts";

setDefaultTimeout(240_000);

const BLOCK = 64 * 1024;
const pgMissing = postgresMissing();
if (pgMissing) console.warn(`skipped on PostgreSQL: ${pgMissing}`);
let postgres: TestPostgres | undefined;
const roots: string[] = [];
beforeAll(async () => {
  if (!pgMissing) postgres = await startPostgres();
});
afterAll(() => {
  postgres?.stop();
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

/** A small deterministic generator (mulberry32): every run takes the same steps. */
function generator(seed: number): (below: number) => number {
  let state = seed >>> 0;
  return (below) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * below);
  };
}

/** An image as the model knows it: each block's content (a seed, or 0 for zeros) and the image's size. */
interface ModelImage {
  readonly size: number;
  readonly blocks: readonly number[];
}

function imageBytes(image: ModelImage): Buffer {
  const bytes = Buffer.alloc(image.size);
  image.blocks.forEach((seed, index) => {
    if (seed !== 0) bytes.set(randomBytes(Math.min(BLOCK, image.size - index * BLOCK), seed), index * BLOCK);
  });
  return bytes;
}

interface Setup {
  readonly catalog: ImageCatalog;
  readonly store: ChunkStore;
  readonly dir: string;
}

async function setUp(backend: "sqlite" | "postgres"): Promise<Setup> {
  const dir = mkdtempSync("/tmp/blaine-inherit-");
  roots.push(dir);
  const db = backend === "sqlite" ? join(dir, "images.db") : await (postgres as TestPostgres).createDatabase();
  const catalog = new ImageCatalog(await openImageSql(db, { create: true }));
  const store = await openStore(join(dir, "store"), { create: true });
  return { catalog, store, dir };
}

/** A real backup (the default pipeline) of `image`, over `base` if given, with the changed blocks trusted when `trusted`. */
async function backUp(setup: Setup, image: ModelImage, step: number, base?: { uid: string; image: ModelImage }, trusted = false): Promise<string> {
  const source = join(setup.dir, "source.img");
  writeFileSync(source, imageBytes(image));
  let changed: { read: Set<number>; zero: Set<number> } | undefined;
  if (base && trusted) {
    changed = { read: new Set(), zero: new Set() };
    image.blocks.forEach((seed, index) => {
      if (seed !== (base.image.blocks[index] ?? 0)) (seed === 0 ? changed!.zero : changed!.read).add(index);
    });
  }
  const run = await openImageBackup(setup.catalog, setup.store, {
    source,
    name: "vm",
    from: base?.uid,
    changed,
    blockSize: BLOCK,
    compression: { kind: "none" },
    date: 1_700_000_000_000 + step * 1000,
  });
  try {
    await imageBackup(run);
    return (await finishImageBackup(run)).uid;
  } catch (error) {
    await abandonImageBackup(run);
    throw error;
  }
}

/** Checks every version the model holds, from the catalog and from the store alone, and that nothing is left over. */
async function expectConsistent(setup: Setup, model: Map<string, ModelImage>): Promise<void> {
  const { catalog, store } = setup;
  const versions = await catalog.versions();
  expect(versions.map((version) => version.uid).sort()).toEqual([...model.keys()].sort());
  expect(await catalog.docUpdates()).toEqual({ rewrite: [], delete: [] });
  expect((await store.listVersionDocs()).sort()).toEqual([...model.keys()].sort());
  for (const version of versions) {
    const image = model.get(version.uid) as ModelImage;
    const expected = image.blocks.flatMap((seed, index) => (seed === 0 ? [] : [[index, hashOf(randomBytes(Math.min(BLOCK, image.size - index * BLOCK), seed))]]));
    const fromCatalog: [number, string][] = [];
    for await (const row of catalog.allBlocks(version.uid)) if (row.hash) fromCatalog.push([row.idx, row.hash]);
    expect(fromCatalog).toEqual(expected as [number, string][]);
    const doc = await wholeVersionDoc(store, parseVersionDoc((await store.getVersionDoc(version.uid)) as string, version.uid));
    expect(doc.blocks.flatMap((row) => (row.hash ? [[row.idx, row.hash]] : []))).toEqual(expected);
    expect(doc.version.size).toBe(image.size);
    expect(await catalog.inheritanceDepth(version.uid)).toBeLessThan(MAX_INHERITANCE_DEPTH);
    expect(version.size - version.bytesSparse).toBe(image.blocks.reduce((sum, seed, index) => sum + (seed === 0 ? 0 : Math.min(BLOCK, image.size - index * BLOCK)), 0));
  }
  const [orphans] = await catalog.sql.all<{ n: unknown }>("SELECT COUNT(*) AS n FROM image_blocks WHERE version_uid NOT IN (SELECT uid FROM image_versions)");
  expect(Number(orphans.n)).toBe(0);
}

/** The next image: the base's with some blocks changed (new content, zeros, or content seen before), maybe grown or shrunk. */
function nextImage(random: (below: number) => number, base: ModelImage | undefined, seeds: { next: number }): ModelImage {
  const count = base && random(4) > 0 ? Math.max(1, base.blocks.length + random(5) - 2) : 1 + random(12);
  const size = count * BLOCK - (random(3) === 0 ? 1 + random(BLOCK - 1) : 0);
  const blocks = Array.from({ length: count }, (_, index) => base?.blocks[index] ?? 0);
  // A block that was the last (short) and no longer is, or is the last now, is read whole again: new content.
  for (let changes = 1 + random(4); changes > 0; changes--) {
    const index = random(count);
    const what = random(5);
    blocks[index] = what === 0 ? 0 : what === 1 && index > 0 ? blocks[index - 1] : ++seeds.next;
  }
  return { size, blocks };
}

for (const backend of ["sqlite", "postgres"] as const) {
  describe.skipIf(backend === "postgres" && Boolean(pgMissing))(`inherited blocks on ${backend}`, () => {
    test("random histories of backups over random bases and removals of one or several versions: every version's blocks stay its image's, in the catalog and in the store alone", async () => {
      for (const seed of [1, 2, 3, 4, 5]) {
        const setup = await setUp(backend);
        const random = generator(seed);
        const model = new Map<string, ModelImage>();
        const seeds = { next: seed * 10_000 };
        try {
          for (let step = 0; step < 50; step++) {
            const uids = [...model.keys()];
            if (uids.length > 2 && random(4) === 0) {
              // Removal: one version as `blaine image rm` does, or several at once as a prune does.
              const going = new Set<string>();
              for (let n = 1 + random(3); n > 0; n--) going.add(uids[random(uids.length)]);
              if (going.size === 1) await removeVersionAndDoc(setup.catalog, setup.store, [...going][0]);
              else {
                await setup.catalog.removeVersions([...going], 0);
                await settleVersionDocs(setup.catalog, setup.store);
              }
              for (const uid of going) model.delete(uid);
            } else {
              const baseUid = uids.length > 0 && random(5) > 0 ? uids[random(uids.length)] : undefined;
              const base = baseUid ? { uid: baseUid, image: model.get(baseUid) as ModelImage } : undefined;
              const image = nextImage(random, base?.image, seeds);
              // The store's image, not its reading of it: the image a trusted change list describes must hold the same size as the base's.
              const trusted = base !== undefined && base.image.size === image.size && random(2) === 0;
              model.set(await backUp(setup, image, step, base, trusted), image);
            }
            await expectConsistent(setup, model);
          }
        } finally {
          await setup.catalog.close();
        }
      }
    });

    test("a chain longer than MAX_INHERITANCE_DEPTH: the version past it holds its base's whole list and inherits nothing; every version restores", async () => {
      const setup = await setUp(backend);
      const model = new Map<string, ModelImage>();
      try {
        let base: { uid: string; image: ModelImage } | undefined;
        for (let step = 0; step <= MAX_INHERITANCE_DEPTH + 1; step++) {
          const blocks = base ? [...base.image.blocks] : [1, 2, 3, 4];
          blocks[step % 4] = 100 + step;
          const image = { size: 4 * BLOCK, blocks };
          const uid = await backUp(setup, image, step, base, step % 2 === 0);
          model.set(uid, image);
          base = { uid, image };
        }
        const versions = await setup.catalog.versions();
        const depths = await Promise.all(versions.map((version) => setup.catalog.inheritanceDepth(version.uid)));
        expect(Math.max(...depths)).toBe(MAX_INHERITANCE_DEPTH - 1);
        expect(versions.filter((version: VersionRow) => version.inheritsUid === null)).toHaveLength(2);
        await expectConsistent(setup, model);
      } finally {
        await setup.catalog.close();
      }
    });

    test("a base removed while a backup over it runs is merged into the new version, at the end of a long chain too (then taken whole): it restores as its image", async () => {
      const setup = await setUp(backend);
      const model = new Map<string, ModelImage>();
      try {
        let base: { uid: string; image: ModelImage } | undefined;
        for (let step = 0; step < MAX_INHERITANCE_DEPTH; step++) {
          const image = { size: 4 * BLOCK, blocks: base ? base.image.blocks.map((seed, index) => (index === step % 4 ? 500 + step : seed)) : [1, 2, 3, 4] };
          const uid = await backUp(setup, image, step, base);
          model.set(uid, image);
          base = { uid, image };
        }
        const tip = base as { uid: string; image: ModelImage };
        expect(await setup.catalog.inheritanceDepth(tip.uid)).toBe(MAX_INHERITANCE_DEPTH - 1);
        // Over the tip (a chain's last: this one is taken whole at its end) and over a version in the middle.
        const middle = [...model.keys()][10];
        for (const [step, over] of [[100, tip], [101, { uid: middle, image: model.get(middle) as ModelImage }]] as const) {
          const image = { size: 4 * BLOCK, blocks: [...over.image.blocks.slice(0, 3), 900 + step] };
          const source = join(setup.dir, "source.img");
          writeFileSync(source, imageBytes(image));
          const run = await openImageBackup(setup.catalog, setup.store, { source, name: "vm", from: over.uid, blockSize: BLOCK, compression: { kind: "none" } });
          await removeVersionAndDoc(setup.catalog, setup.store, over.uid);
          model.delete(over.uid);
          await imageBackup(run);
          const uid = (await finishImageBackup(run)).uid;
          model.set(uid, image);
          await expectConsistent(setup, model);
        }
      } finally {
        await setup.catalog.close();
      }
    });

    test("document notes: one made again while a settling ran stays for the next; a version imported again after a removal killed before its document went keeps its document", async () => {
      const setup = await setUp(backend);
      try {
        const first = { size: 2 * BLOCK, blocks: [1, 2] };
        const a = await backUp(setup, first, 0);
        const b = await backUp(setup, { size: 2 * BLOCK, blocks: [1, 3] }, 1, { uid: a, image: first });
        const c = await backUp(setup, { size: 2 * BLOCK, blocks: [4, 3] }, 2, { uid: b, image: { size: 2 * BLOCK, blocks: [1, 3] } });
        await setup.catalog.removeVersion(b);
        const seen = await setup.catalog.docUpdates();
        expect(seen.rewrite.map((note) => note.uid)).toEqual([c]);
        // A removal beside this settling makes c's note again (a removed, c merged into once more).
        await setup.catalog.removeVersion(a);
        await setup.catalog.docUpdatesDone(seen.rewrite);
        expect((await setup.catalog.docUpdates()).rewrite.map((note) => note.uid)).toEqual([c]);
        await settleVersionDocs(setup.catalog, setup.store);
        const model = new Map([[c, { size: 2 * BLOCK, blocks: [4, 3] }]]);
        await expectConsistent(setup, model);
        // Removed, killed before settling, imported again (its exported document), then settled: its document stays.
        const doc = await wholeVersionDoc(setup.store, parseVersionDoc((await setup.store.getVersionDoc(c)) as string, c));
        await setup.catalog.removeVersion(c);
        await setup.catalog.insertVersion(doc.version, doc.blocks, []);
        await settleVersionDocs(setup.catalog, setup.store);
        await expectConsistent(setup, model);
      } finally {
        await setup.catalog.close();
      }
    });

    test("a bad chunk makes invalid every version whose blocks hold it, inherited or its own, and none that replaced that block", async () => {
      const setup = await setUp(backend);
      try {
        const full = { size: 3 * BLOCK, blocks: [1, 2, 3] };
        const a = await backUp(setup, full, 0);
        const b = await backUp(setup, { size: 3 * BLOCK, blocks: [1, 20, 3] }, 1, { uid: a, image: full });
        const c = await backUp(setup, { size: 3 * BLOCK, blocks: [1, 20, 30] }, 2, { uid: b, image: { size: 3 * BLOCK, blocks: [1, 20, 3] } });
        const hash = (seed: number) => hashOf(randomBytes(BLOCK, seed));
        expect(await setup.catalog.markBad([hash(2)])).toEqual([a]);
        expect((await setup.catalog.markBad([hash(1)])).sort()).toEqual([a, b, c].sort());
        expect((await setup.catalog.version(c))?.status).toBe("invalid");
        // A full scrub that finds them good again: each version valid once none of its blocks is bad.
        expect((await setup.catalog.revalidate([c])).sort()).toEqual([c]);
        expect((await setup.catalog.version(b))?.status).toBe("invalid");
        expect((await setup.catalog.revalidate([a, b])).sort()).toEqual([a, b].sort());
      } finally {
        await setup.catalog.close();
      }
    });
  });
}
