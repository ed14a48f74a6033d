import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, chownSync, closeSync, cpSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { dataExtents } from "../lib/fs/sparse.ts";
import { blaine, isStopped, spawnBlaine, waitFor } from "./helpers/cli.ts";
import { blaineKilledAt, crashAt, expectDiedAt } from "./helpers/crash.ts";
import { canMount, mountTmpfs } from "./helpers/mounts.ts";
import { ImageCatalog } from "../lib/image/catalog/image-catalog.ts";
import { openImageSql } from "../lib/image/catalog/sql.ts";
import { sqliteCatalogAsOf } from "./helpers/fixture.ts";
import { MiB, hashOf, imageEnv, randomBytes, sameBytes, textBytes, writeAt, type ImageEnv } from "./helpers/image-env.ts";
import { postgresMissing, startPostgres, type TestPostgres } from "./helpers/postgres.ts";
import { s3Missing, startS3, type TestS3 } from "./helpers/s3rver.ts";
import { Terminal } from "./helpers/terminal.ts";

// Real servers and the CLI in child processes: run alone (bun test test/image.test.ts) as under bun run test.
setDefaultTimeout(120_000);

/**
 * Block images (issue 15): every catalog test on SQLite and on a real
 * PostgreSQL, the store tests also on a real S3 server (s3rver). Small
 * images and 64 KiB blocks keep the whole file quick; the code paths are
 * the ones 4 MiB blocks take.
 */
const BS = ["--block-size", "64K"];
const BLOCK = 64 * 1024;

const pgMissing = postgresMissing();
if (pgMissing) console.warn(`image tests on PostgreSQL skipped: ${pgMissing}`);
const noS3 = s3Missing();
if (noS3) console.warn(`image tests on S3 skipped: ${noS3}`);
let postgres: TestPostgres | undefined;
let s3: TestS3 | undefined;
const roots: string[] = [];

beforeAll(async () => {
  if (!pgMissing) postgres = await startPostgres();
  if (!noS3) s3 = await startS3();
}, 60_000);
afterAll(() => {
  postgres?.stop();
  s3?.stop();
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

/** Catalog × store combinations: both catalogs on a directory store, and SQLite on S3 for the tests that touch the store. */
const backends = [
  { backend: "sqlite", store: "directory", missing: undefined },
  { backend: "postgres", store: "directory", missing: pgMissing },
  { backend: "sqlite", store: "s3", missing: noS3 },
];

async function newEnv(backend: string, store = "directory"): Promise<ImageEnv> {
  const dir = mkdtempSync("/tmp/blaine-image-");
  roots.push(dir);
  const db = backend === "postgres" ? await (postgres as TestPostgres).createDatabase() : join(dir, "images.db");
  return imageEnv(dir, db, store === "s3" ? s3 : undefined);
}

/** A sparse 8 MiB image: random data, text, a hole, zeros written out, and the same random block twice. */
function makeImage(path: string): void {
  writeFileSync(path, "");
  truncateSync(path, 8 * MiB);
  writeAt(path, 0, randomBytes(3 * BLOCK, 1));
  writeAt(path, 1 * MiB, textBytes(5 * BLOCK, 2));
  writeAt(path, 3 * MiB, new Uint8Array(4 * BLOCK)); // allocated zeros
  writeAt(path, 5 * MiB, randomBytes(BLOCK, 3));
  writeAt(path, 6 * MiB, randomBytes(BLOCK, 3)); // a duplicate block
  writeAt(path, 8 * MiB - 1000, randomBytes(1000, 4)); // the end
}

// A combination whose server is missing is skipped (its reason printed above), not left out.
for (const { backend, store, missing } of backends) (missing ? describe.skip : describe)(`block images: ${backend} catalog, ${store} store`, () => {
  /** A test of the catalog alone runs on the directory store only; store tests run on S3 too. */
  const catalogOnly = store !== "directory";
  // Left out (not skipped: nothing is missing) on the S3 store, where they would only repeat the directory store's run.
  const catalogTest = catalogOnly ? () => {} : test;
  test("issue 15: a sparse image backs up only its data (zeros sparse, equal blocks once) and restores byte for byte; --sparse leaves holes", async () => {
    const env = await newEnv(backend, store);
    const source = join(env.dir, "vm.img");
    makeImage(source);
    const backup = await env.image(["backup", source, "vm", "--snapshot", "snap1", "--label", "host=kvm1", "--label", "tier=gold", "--json", ...BS]);
    expect(backup.exitCode).toBe(0);
    const data = 3 + 5 + 1 + 1 + 1; // blocks holding data
    // Four text blocks equal to the first, one random block equal to another.
    expect(backup.json).toMatchObject({ status: "valid", bytesDeduplicated: 5 * BLOCK });
    expect(backup.json.bytesSparse).toBe(8 * MiB - data * BLOCK);
    // Holes are never read: only the allocated blocks are.
    expect(backup.json.bytesRead).toBeLessThan(8 * MiB);
    // Distinct data blocks: 3 random + 1 text (the five text blocks are equal) + 1 random + the end.
    expect((await env.chunks()).length).toBe(6);
    expect(backup.json.bytesWritten).toBeLessThan(5 * BLOCK + 2000);

    const ls = await env.image(["ls", "--json"]);
    expect(ls.json.versions).toHaveLength(1);
    expect(ls.json.versions[0]).toMatchObject({ uid: backup.json.uid, name: "vm", snapshot: "snap1", size: 8 * MiB, status: "valid", protected: false, labels: { host: "kvm1", tier: "gold" } });

    const dense = join(env.dir, "dense.img");
    expect((await env.image(["restore", backup.json.uid, dense])).exitCode).toBe(0);
    expect(sameBytes(source, dense)).toBe(true);
    const sparse = join(env.dir, "sparse.img");
    expect((await env.image(["restore", backup.json.uid, sparse, "--sparse"])).exitCode).toBe(0);
    expect(sameBytes(source, sparse)).toBe(true);
    const fd = openSync(sparse, "r");
    const extents = dataExtents(fd, 8 * MiB) ?? [];
    closeSync(fd);
    const allocated = extents.reduce((sum, [start, end]) => sum + end - start, 0);
    expect(allocated).toBeLessThanOrEqual(data * BLOCK);
    expect(statSync(sparse).blocks * 512).toBeLessThan(statSync(dense).blocks * 512);
    // An existing target is refused without --force.
    const again = await env.image(["restore", backup.json.uid, sparse, "--sparse"]);
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toContain("--force");
  });

  catalogTest("a catalog written by a newer Blaine is refused by name, and nothing is written to it", async () => {
    const env = await newEnv(backend, store);
    const source = join(env.dir, "vm.img");
    makeImage(source);
    await env.backup(source, "vm", BS);
    /** SQL straight on the catalog, as a later Blaine would have left it. */
    const query = async (text: string): Promise<unknown[]> => {
      if (backend === "postgres") {
        const sql = new Bun.SQL(env.db);
        try {
          return [...(await sql.unsafe(text.replace("MIGRATIONS", "drizzle.__drizzle_migrations")))];
        } finally {
          await sql.close();
        }
      }
      const sqlite = new Database(env.db);
      try {
        return sqlite.query(text.replace("MIGRATIONS", "__drizzle_migrations")).all();
      } finally {
        sqlite.close();
      }
    };
    await query("INSERT INTO MIGRATIONS (hash, created_at) VALUES ('from a later Blaine', 99999999999999)");
    const versionsBefore = await query("SELECT uid FROM image_versions ORDER BY uid");
    for (const args of [["ls"], ["backup", source, "vm", ...BS]]) {
      const result = await env.image(args);
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain("image catalog");
      expect(result.stderr).toContain("was written by a newer version of Blaine; upgrade Blaine to use it");
    }
    expect(await query("SELECT uid FROM image_versions ORDER BY uid")).toEqual(versionsBefore);
  });

  catalogTest("issue 15: --from reads every block and stores only the changed ones; the version restores whole", async () => {
    const env = await newEnv(backend, store);
    const source = join(env.dir, "vm.img");
    makeImage(source);
    const first = await env.backup(source, "vm", BS);
    const before = (await env.chunks()).length;
    writeAt(source, 2 * MiB, randomBytes(BLOCK, 10)); // a hole gets data
    writeAt(source, 0, new Uint8Array(BLOCK)); // data becomes zeros
    const second = await env.image(["backup", source, "vm", "--from", first, "--json", ...BS]);
    expect(second.exitCode).toBe(0);
    expect(second.json.bytesRead).toBe(8 * MiB);
    // The ten data blocks equal to the base's are deduplicated against it; the new one is written.
    expect(second.json.bytesDeduplicated).toBe(10 * BLOCK);
    expect((await env.chunks()).length).toBe(before + 1);
    const out = join(env.dir, "out.img");
    expect((await env.image(["restore", second.json.uid, out])).exitCode).toBe(0);
    expect(sameBytes(source, out)).toBe(true);
    // The first version is untouched.
    const old = join(env.dir, "old.img");
    expect((await env.image(["restore", first, old])).exitCode).toBe(0);
    expect(readFileSync(old).subarray(0, 16)).toEqual(Buffer.from(randomBytes(16, 1)));
  });

  catalogTest("issue 15: rbd diff hints in Ceph's format (exists as a string, \"false\" ranges sparse) are all a backup reads", async () => {
    const env = await newEnv(backend, store);
    const source = join(env.dir, "vm.img");
    makeImage(source);
    const first = await env.backup(source, "vm", BS);
    writeAt(source, 4 * MiB + 100, randomBytes(200, 20));
    writeAt(source, 1 * MiB, new Uint8Array(2 * BLOCK)); // discarded
    const hints = join(env.dir, "diff.json");
    writeFileSync(
      hints,
      JSON.stringify([
        { offset: 1 * MiB, length: 2 * BLOCK, exists: "false" },
        { offset: 4 * MiB, length: 4096, exists: "true" },
      ]),
    );
    const second = await env.image(["backup", source, "vm", "--from", first, "--hints", hints, "--snapshot", "snap2", "--json", ...BS]);
    expect(second.exitCode).toBe(0);
    // One hinted block read, plus the sanity check's sample, never the whole image.
    expect(second.json.bytesRead).toBeLessThanOrEqual(BLOCK * (1 + 12));
    const out = join(env.dir, "out.img");
    expect((await env.image(["restore", second.json.uid, out])).exitCode).toBe(0);
    expect(sameBytes(source, out)).toBe(true);
    // An empty diff: nothing changed, nothing read but the sample.
    writeFileSync(hints, "[]");
    const third = await env.image(["backup", source, "vm", "--from", second.json.uid, "--hints", hints, "--json", ...BS]);
    expect(third.exitCode).toBe(0);
    expect(third.json.bytesWritten).toBe(0);
  });

  catalogTest("TestGrownFromShortLastBlock: an image whose last block was short, grown by truncate (no hint names it), backs up with hints and restores whole", async () => {
    const env = await newEnv(backend, store);
    const source = join(env.dir, "vm.img");
    makeImage(source);
    writeAt(source, 8 * MiB - BLOCK, randomBytes(BLOCK, 50));
    truncateSync(source, 8 * MiB - BLOCK / 2); // the last block holds 32 KiB of data
    const first = await env.backup(source, "vm", BS);
    // Grown as a VM disk is resized: the rest of that block and a new one are zeros, written by nobody.
    truncateSync(source, 8 * MiB + BLOCK);
    const hints = join(env.dir, "diff.json");
    writeFileSync(hints, "[]");
    const second = await env.image(["backup", source, "vm", "--from", first, "--hints", hints, "--json", ...BS]);
    expect(second.exitCode).toBe(0);
    const out = join(env.dir, "out.img");
    const restored = await env.image(["restore", second.json.uid, out]);
    expect(restored.stdout).not.toContain("damaged");
    expect(restored.exitCode).toBe(0);
    expect(sameBytes(source, out)).toBe(true);
  });

  catalogTest("TestShrunkToNothing: an image emptied since its base backs up with hints (nothing to read) and restores empty", async () => {
    const env = await newEnv(backend, store);
    const source = join(env.dir, "vm.img");
    makeImage(source);
    const first = await env.backup(source, "vm", BS);
    truncateSync(source, 0);
    const hints = join(env.dir, "diff.json");
    writeFileSync(hints, "[]");
    const second = await env.image(["backup", source, "vm", "--from", first, "--hints", hints, "--json", ...BS]);
    expect(second.stderr).not.toContain("out of range");
    expect(second.exitCode).toBe(0);
    const out = join(env.dir, "out.img");
    expect((await env.image(["restore", second.json.uid, out])).exitCode).toBe(0);
    expect(statSync(out).size).toBe(0);
  });

  catalogTest("issue 15: wrong hints are caught by the sanity check (the block named, no valid version, non-zero exit); hints past the end are refused", async () => {
    const env = await newEnv(backend, store);
    const source = join(env.dir, "vm.img");
    makeImage(source);
    const first = await env.backup(source, "vm", BS);
    writeAt(source, 0, randomBytes(BLOCK, 30)); // block 0 changed, not hinted
    const hints = join(env.dir, "diff.json");
    writeFileSync(hints, JSON.stringify([{ offset: 4 * MiB, length: BLOCK, exists: "true" }]));
    const wrong = await env.image(["backup", source, "vm", "--from", first, "--hints", hints, ...BS]);
    expect(wrong.exitCode).not.toBe(0);
    expect(wrong.stderr).toContain("block 0");
    const ls = await env.image(["ls", "--json"]);
    expect(ls.json.versions.map((v: { uid: string }) => v.uid)).toEqual([first]);
    writeFileSync(hints, JSON.stringify([{ offset: 8 * MiB - 10, length: 20, exists: "true" }]));
    const past = await env.image(["backup", source, "vm", "--hints", hints, ...BS]);
    expect(past.exitCode).toBe(2);
    expect(past.stderr).toContain("past the end");
  });

  test("issue 15: bit rot in a chunk is found by scrub and invalidates every version holding it; a full scrub of a repaired store makes them valid again", async () => {
    const env = await newEnv(backend, store);
    const source = join(env.dir, "vm.img");
    makeImage(source);
    const a = await env.backup(source, "vm", BS);
    writeAt(source, 4 * MiB, randomBytes(BLOCK, 40));
    const b = await env.backup(source, "vm", ["--from", a, ...BS]);
    const other = join(env.dir, "other.img");
    writeFileSync(other, Buffer.from(randomBytes(BLOCK, 3))); // holds the shared random block of vm
    const c = await env.backup(other, "other", BS);
    const good = await env.image(["scrub", a, b, c, "--json"]);
    expect(good.exitCode).toBe(0);
    // Shared chunks are read once.
    expect(good.json.chunksChecked).toBe(7);

    const shared = hashOf(randomBytes(BLOCK, 3));
    const original = await env.readChunk(shared);
    const rotten = Buffer.from(original);
    rotten[rotten.length - 5] ^= 0x40;
    await env.writeChunk(shared, rotten);
    const scrub = await env.image(["scrub", c, "-p", "100", "--json"]);
    expect(scrub.exitCode).toBe(4);
    expect(scrub.json.invalidVersions.sort()).toEqual([a, b, c].sort());
    const ls = await env.image(["ls", "--json"]);
    expect(ls.json.versions.map((v: { status: string }) => v.status)).toEqual(["invalid", "invalid", "invalid"]);
    // A -p scrub whose sample misses the bad chunk leaves the version invalid, and says so: exit 4, never 0.
    for (let round = 0; round < 3; round++) {
      const sampled = await env.image(["scrub", a, "-p", "1", "--json"]);
      expect({ exitCode: sampled.exitCode, notValid: sampled.json.notValidVersions }).toEqual({ exitCode: 4, notValid: [{ uid: a, status: "invalid" }] });
    }
    // An invalid version still restores all but its bad blocks: --keep-days guards it as a valid one.
    const youngInvalid = await env.image(["rm", a]);
    expect(youngInvalid.exitCode).toBe(2);
    expect(youngInvalid.stderr).toContain("--keep-days");
    // An invalid version is no base.
    const refused = await env.image(["backup", source, "vm", "--from", b, ...BS]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain("full backup");

    await env.writeChunk(shared, original);
    const rescrub = await env.image(["scrub", a, b, c, "--json"]);
    expect({ exitCode: rescrub.exitCode, badChunks: rescrub.json?.badChunks, stderr: rescrub.stderr }).toEqual({ exitCode: 0, badChunks: [], stderr: rescrub.stderr });
    expect(rescrub.json.revalidatedVersions.sort()).toEqual([a, b, c].sort());
    // --source: a mismatch with the image is reported, not blamed on the store.
    writeAt(source, 0, randomBytes(BLOCK, 41));
    const compared = await env.image(["scrub", b, "--source", source, "--json"]);
    expect(compared.exitCode).toBe(1);
    expect(compared.json.sourceMismatches).toEqual([{ index: 0, offset: 0 }]);
    expect(compared.json.invalidVersions).toEqual([]);
    const said = await env.image(["scrub", b, "--source", source]);
    expect(said.stdout + said.stderr).toContain("(the store's chunk is good)");
    // With -p, the same share of the blocks is compared: an image differing everywhere shows no more mismatches than that.
    const elsewhere = join(env.dir, "elsewhere.img");
    const size = statSync(source).size;
    writeFileSync(elsewhere, Buffer.from(randomBytes(size, 42)));
    const sampled = await env.image(["scrub", b, "-p", "25", "--source", elsewhere, "--json"]);
    expect(sampled.exitCode).toBe(1);
    const blocks = Math.ceil(size / BLOCK);
    expect(sampled.json.sourceMismatches.length).toBeGreaterThan(0);
    expect(sampled.json.sourceMismatches.length).toBeLessThanOrEqual(Math.ceil(blocks / 4));
  });

  test("issue 15: a restore with a missing chunk restores every other block, lists the range, exits 4", async () => {
    const env = await newEnv(backend, store);
    const source = join(env.dir, "vm.img");
    makeImage(source);
    const uid = await env.backup(source, "vm", BS);
    await env.removeChunk(hashOf(randomBytes(BLOCK, 3)));
    const out = join(env.dir, "out.img");
    const restore = await env.image(["restore", uid, out, "--json"]);
    expect(restore.exitCode).toBe(4);
    expect(restore.json.damaged.map((range: { offset: number }) => range.offset)).toEqual([5 * MiB, 6 * MiB]);
    const expected = Buffer.from(readFileSync(source));
    expected.fill(0, 5 * MiB, 5 * MiB + BLOCK);
    expected.fill(0, 6 * MiB, 6 * MiB + BLOCK);
    expect(Buffer.compare(readFileSync(out), expected)).toBe(0);
  });

  test("issue 15: a restore with damaged chunks (bit rot in a raw and in a zstd chunk, a chunk longer than a block's object) restores every other block, lists each range, exits 4", async () => {
    const env = await newEnv(backend, store);
    const source = join(env.dir, "vm.img");
    makeImage(source);
    const uid = await env.backup(source, "vm", BS);
    const random = randomBytes(3 * BLOCK, 1);
    const flipped = async (hash: string, at: number) => {
      const object = Buffer.from(await env.readChunk(hash));
      object[at] ^= 0xff;
      await env.writeChunk(hash, object);
    };
    await flipped(hashOf(random.subarray(0, BLOCK)), 16 + 100); // stored raw: random data
    const text = await env.readChunk(hashOf(textBytes(BLOCK, 2)));
    expect(text.length).toBeLessThan(BLOCK); // stored compressed
    await flipped(hashOf(textBytes(BLOCK, 2)), Math.floor(text.length / 2));
    const grown = hashOf(random.subarray(BLOCK, 2 * BLOCK));
    await env.writeChunk(grown, Buffer.concat([await env.readChunk(grown), new Uint8Array(BLOCK)]));
    const out = join(env.dir, "out.img");
    const restore = await env.image(["restore", uid, out, "--json"]);
    expect(restore.exitCode).toBe(4);
    const textRanges = [0, 1, 2, 3, 4].map((block) => MiB + block * BLOCK);
    expect(restore.json.damaged.map((range: { offset: number }) => range.offset)).toEqual([0, BLOCK, ...textRanges]);
    for (const range of restore.json.damaged) expect(range.problem).toStartWith("chunk damaged");
    const expected = Buffer.from(readFileSync(source));
    for (const offset of [0, BLOCK, ...textRanges]) expected.fill(0, offset, offset + BLOCK);
    expect(Buffer.compare(readFileSync(out), expected)).toBe(0);
  });

  test("issue 15: export → rm → import lists exactly as before and restores; rm refuses protected and young versions", async () => {
    const env = await newEnv(backend, store);
    const source = join(env.dir, "vm.img");
    makeImage(source);
    const uid = await env.backup(source, "vm", ["--snapshot", "s1", ...BS]);
    const before = (await env.image(["ls", "--json"])).json;
    const file = join(env.dir, "vm.export.json");
    expect((await env.image(["export", uid, file])).exitCode).toBe(0);

    expect((await env.image(["protect", uid])).exitCode).toBe(0);
    const protectedRm = await env.image(["rm", uid]);
    expect(protectedRm.exitCode).toBe(2);
    expect(protectedRm.stderr).toContain("protected");
    expect((await env.image(["unprotect", uid])).exitCode).toBe(0);
    const young = await env.image(["rm", uid]);
    expect(young.exitCode).toBe(2);
    expect(young.stderr).toContain("--keep-days");
    expect((await env.image(["rm", uid, "--keep-days", "0"])).exitCode).toBe(0);
    expect((await env.image(["ls", "--json"])).json.versions).toEqual([]);

    // Within the grace period cleanup frees nothing, and says why.
    const early = await env.image(["cleanup", "--json"]);
    expect(early.exitCode).toBe(0);
    expect(early.json).toMatchObject({ chunksFreed: 0, inGrace: 6 });
    expect(early.stderr + early.stdout).toContain("grace period");

    expect((await env.image(["import", file])).exitCode).toBe(0);
    expect((await env.image(["ls", "--json"])).json).toEqual(before);
    const out = join(env.dir, "out.img");
    expect((await env.image(["restore", uid, out])).exitCode).toBe(0);
    expect(sameBytes(source, out)).toBe(true);
    // Imported, its chunks are no candidates any more.
    expect((await env.image(["cleanup", "--grace", "0", "--json"])).json).toMatchObject({ chunksFreed: 0, inGrace: 0 });

    expect((await env.image(["rm", uid, "--force"])).exitCode).toBe(0);
    const freed = await env.image(["cleanup", "--grace", "0", "--json"]);
    expect(freed.json.chunksFreed).toBe(6);
    expect(await env.chunks()).toEqual([]);
  });

  test("issue 15: kill -9 during a backup leaves an incomplete version that is never a base; cleanup --full removes its orphans", async () => {
    const env = await newEnv(backend, store);
    const source = join(env.dir, "vm.img");
    writeFileSync(source, Buffer.from(randomBytes(4 * MiB, 50)));
    const crash = crashAt("image-chunk-stored:10");
    expectDiedAt(await env.image(["backup", source, "vm", ...BS], crash.env), crash, "image-chunk-stored:10");
    const ls = await env.image(["ls", "--json"]);
    expect(ls.json.versions.map((v: { status: string }) => v.status)).toEqual(["incomplete"]);
    const uid = ls.json.versions[0].uid;
    const base = await env.image(["backup", source, "vm", "--from", uid, ...BS]);
    expect(base.exitCode).toBe(2);
    expect(base.stderr).toContain("incomplete");
    const left = (await env.chunks()).length;
    expect(left).toBeGreaterThanOrEqual(10);
    // The killed backup's claims protect nothing once its process is gone: its chunks are orphans.
    const full = await env.image(["cleanup", "--full", "--grace", "0", "--json"]);
    expect(full.exitCode).toBe(0);
    expect(full.json.orphansFreed).toBe(left);
    expect(await env.chunks()).toEqual([]);
    // A scrub says it is not valid (exit 4); rm takes it without --force (--keep-days guards restorable versions).
    const scrub = await env.image(["scrub", uid, "--json"]);
    expect({ exitCode: scrub.exitCode, notValid: scrub.json.notValidVersions }).toEqual({ exitCode: 4, notValid: [{ uid, status: "incomplete" }] });
    expect((await env.image(["rm", uid])).exitCode).toBe(0);
    // A full backup after it is whole.
    const next = await env.backup(source, "vm", BS);
    const out = join(env.dir, "out.img");
    expect((await env.image(["restore", next, out])).exitCode).toBe(0);
    expect(sameBytes(source, out)).toBe(true);
  });

  catalogTest("TestIncompleteVersionRestore: a version a killed backup left restores what it holds, says on stderr it is incomplete and exits 4 (--json incomplete: true); where it recorded nothing, zeros, or over a --from base the base's blocks", async () => {
    const env = await newEnv(backend, store);
    const source = join(env.dir, "vm.img");
    const first = Buffer.from(randomBytes(4 * MiB, 90));
    writeFileSync(source, first);
    /** The version the killed backup left, and the bytes it should restore: each block as its recorded row names it, zeros where none does. */
    const killedBackup = async (args: string[], images: Uint8Array[]) => {
      // Before the first backup an SQLite catalog does not exist yet: ls lists nothing.
      const uids = async () => (((await env.image(["ls", "--json"])).json?.versions ?? []) as { uid: string }[]).map((v) => v.uid);
      const before = await uids();
      const crash = crashAt("image-chunk-stored:10");
      expectDiedAt(await env.image(["backup", source, "vm", ...args, ...BS], crash.env), crash, "image-chunk-stored:10");
      const [uid] = (await uids()).filter((v) => !before.includes(v));
      const byHash = new Map<string, Uint8Array>();
      for (const image of images) for (let at = 0; at < image.length; at += BLOCK) byHash.set(hashOf(image.subarray(at, at + BLOCK)), image.subarray(at, at + BLOCK));
      const catalog = new ImageCatalog(await openImageSql(env.db, { create: false }));
      const expected = Buffer.alloc(4 * MiB);
      try {
        for (const [index, hash] of await catalog.hashesByIndex(uid)) if (hash) expected.set(byHash.get(hash)!, index * BLOCK);
      } finally {
        await catalog.close();
      }
      return { uid, expected };
    };
    const full = await killedBackup([], [first]);
    const out = join(env.dir, "full.img");
    const restore = await env.image(["restore", full.uid, out, "--json"]);
    expect({ exitCode: restore.exitCode, incomplete: restore.json.incomplete, damaged: restore.json.damaged }).toEqual({ exitCode: 4, incomplete: true, damaged: [] });
    expect(restore.stderr).toContain(`version ${full.uid} (vm) is incomplete, a backup that did not finish`);
    expect(restore.stderr).toContain("the blocks it never recorded are restored as zeros");
    expect(Buffer.compare(readFileSync(out), full.expected)).toBe(0);
    // Its last block comes after the tenth chunk stored: never recorded.
    expect(full.expected.subarray(-BLOCK)).toEqual(Buffer.alloc(BLOCK));
    // Without --json: the same exit, and the summary does not pass for a whole restore.
    const said = await env.image(["restore", full.uid, join(env.dir, "said.img")]);
    expect(said.exitCode).toBe(4);
    expect(said.stderr).toContain("is incomplete, a backup that did not finish");
    expect(said.stdout).toContain(`restored incomplete version ${full.uid}`);

    // Over a base: an incremental's version inherits its base's blocks from its start, so those stand where it recorded nothing.
    const base = await env.backup(source, "vm", BS);
    const second = Buffer.from(randomBytes(4 * MiB, 91));
    writeFileSync(source, second);
    const over = await killedBackup(["--from", base], [first, second]);
    const overOut = join(env.dir, "over.img");
    const overRestore = await env.image(["restore", over.uid, overOut, "--json"]);
    expect({ exitCode: overRestore.exitCode, incomplete: overRestore.json.incomplete }).toEqual({ exitCode: 4, incomplete: true });
    expect(overRestore.stderr).toContain(`the blocks it never recorded are restored as its base, version ${base}, holds them (older data)`);
    expect(Buffer.compare(readFileSync(overOut), over.expected)).toBe(0);
    expect(over.expected.subarray(-BLOCK)).toEqual(first.subarray(-BLOCK));
  });

  catalogTest("TestRestoreKeepsOwnerAndMode: restore --force over a VM's disk keeps its owner (uid 64055) and mode (0660); a new file is 0600, while written and once whole (an image holds its disk's secrets)", async () => {
    const env = await newEnv(backend, store);
    const source = join(env.dir, "vm.img");
    writeFileSync(source, Buffer.from(randomBytes(4 * MiB, 95)));
    const uid = await env.backup(source, "vm", BS);
    // libvirt-qemu's ids on Debian; root may give any, and only root may give another user's.
    const root = process.getuid?.() === 0;
    const owner = root ? { uid: 64055, gid: 64055 } : { uid: process.getuid!(), gid: process.getgid!() };
    const disk = join(env.dir, "disk.img");
    writeFileSync(disk, "the VM's old disk");
    chmodSync(disk, 0o660);
    chownSync(disk, owner.uid, owner.gid);
    const restore = await env.image(["restore", uid, disk, "--force"]);
    expect(restore.exitCode).toBe(0);
    expect(sameBytes(source, disk)).toBe(true);
    const restored = statSync(disk);
    expect({ mode: restored.mode & 0o7777, uid: restored.uid, gid: restored.gid }).toEqual({ mode: 0o660, ...owner });

    // A new file: 0600 while it is written and once renamed into place, whatever the umask.
    const fresh = join(env.dir, "fresh.img");
    const imageArgs = ["image", "restore", uid, fresh, "--db", env.db, "--store", env.store];
    const writing = spawnBlaine(imageArgs, { env: { BLAINE_STOP_AT: "image-block-restored:5" } });
    await waitFor(() => isStopped(writing.pid), 60_000, "the restore to stop at its fifth block");
    try {
      const temps = readdirSync(env.dir).filter((name) => name.startsWith(".fresh.img.blaine-restore-"));
      expect(temps.map((name) => statSync(join(env.dir, name)).mode & 0o7777)).toEqual([0o600]);
    } finally {
      writing.kill("SIGCONT");
    }
    expect(await writing.exited).toBe(0);
    expect(sameBytes(source, fresh)).toBe(true);
    expect(statSync(fresh).mode & 0o7777).toBe(0o600);
  });

  catalogTest("TestMissingTargetFolder: restore and export into a folder that does not exist are usage errors naming the target's folder (exit 2), not the hidden temp", async () => {
    const env = await newEnv(backend, store);
    const source = join(env.dir, "vm.img");
    writeFileSync(source, Buffer.from(randomBytes(BLOCK, 96)));
    const uid = await env.backup(source, "vm", BS);
    const folder = join(env.dir, "nodir");
    const outcomes = [];
    const expected = [];
    for (const [action, target] of [["restore", join(folder, "x.img")], ["export", join(folder, "x.json")]]) {
      const result = await env.image([action, uid, target]);
      outcomes.push({ action, exitCode: result.exitCode, stderr: result.stderr });
      expected.push({ action, exitCode: 2, stderr: `blaine: ${target}: its folder ${folder} does not exist\n` });
    }
    expect(outcomes).toEqual(expected);
    expect(existsSync(folder)).toBe(false);
    // A "folder" that is a file is named too (ENOTDIR on the temp, exit 1, before).
    writeFileSync(folder, "a file");
    const onFile = await env.image(["restore", uid, join(folder, "x.img")]);
    expect({ exitCode: onFile.exitCode, stderr: onFile.stderr }).toEqual({ exitCode: 2, stderr: `blaine: ${join(folder, "x.img")}: ${folder} is not a folder\n` });
  });

  catalogTest("kill -9: an export's temp beside its file is removed by the next export to it", async () => {
    const env = await newEnv(backend, store);
    const source = join(env.dir, "vm.img");
    makeImage(source);
    const uid = await env.backup(source, "vm", BS);
    const file = join(env.dir, "vm.json");
    const temps = () => readdirSync(env.dir).filter((name) => name.startsWith(".vm.json.") && name.endsWith(".tmp"));
    const crash = crashAt("atomic-write-before-rename:1");
    expectDiedAt(await env.image(["export", uid, file], crash.env), crash, "atomic-write-before-rename:1");
    expect(temps()).toHaveLength(1);
    expect(existsSync(file)).toBe(false);
    expect((await env.image(["export", uid, file])).exitCode).toBe(0);
    expect(temps()).toEqual([]);
    expect(JSON.parse(readFileSync(file, "utf8")).version.uid).toBe(uid);
  });

  catalogTest("kill -9: a restore's temp beside the target is removed by the next restore", async () => {
    const env = await newEnv(backend, store);
    const source = join(env.dir, "vm.img");
    writeFileSync(source, Buffer.from(randomBytes(4 * MiB, 80)));
    const uid = await env.backup(source, "vm", BS);
    const out = join(env.dir, "out.img");
    const temps = () => readdirSync(env.dir).filter((name) => name.startsWith(".out.img.") && name.endsWith(".tmp"));
    const crash = crashAt("image-block-restored:5");
    expectDiedAt(await env.image(["restore", uid, out], crash.env), crash, "image-block-restored:5");
    expect(temps()).toHaveLength(1);
    expect(existsSync(out)).toBe(false);
    // On a shared directory a temp of another host is that host's: its PID says nothing here.
    const otherHost = ".out.img.blaine-restore-999999@other-host.tmp";
    writeFileSync(join(env.dir, otherHost), "another host's restore");
    // Named before temps carried their host, by a restore long gone.
    const older = join(env.dir, ".out.img.blaine-restore-999998.tmp");
    writeFileSync(older, "an older restore's");
    utimesSync(older, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
    const again = await env.image(["restore", uid, out]);
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toContain(`removed 2 temp files of restores killed before they finished, beside ${out}`);
    expect(temps()).toEqual([otherHost]);
    expect(sameBytes(source, out)).toBe(true);
  });

  catalogTest("issue 15: Ctrl-C during a backup leaves an incomplete version that is never a base, says so and exits 130; during a restore it leaves no partial file", async () => {
    const env = await newEnv(backend, store);
    const source = join(env.dir, "vm.img");
    writeFileSync(source, Buffer.from(randomBytes(4 * MiB, 70)));
    const imageArgs = (args: string[]) => ["image", ...args, "--db", env.db, "--store", env.store, ...BS];
    // The backup stops itself after its fifth chunk; Ctrl-C arrives then, as a person's would mid-run.
    const backup = spawnBlaine(imageArgs(["backup", source, "vm"]), { env: { BLAINE_STOP_AT: "image-chunk-stored:5" } });
    await waitFor(() => isStopped(backup.pid), 60_000, "the backup to stop at its fifth chunk");
    backup.kill("SIGINT");
    backup.kill("SIGCONT");
    expect(await backup.exited).toBe(130);
    const stderr = await new Response(backup.stderr).text();
    expect(stderr).toContain("vm: interrupted after");
    expect(stderr).toContain("is left incomplete: never a base for --from");
    const ls = await env.image(["ls", "--json"]);
    expect(ls.json.versions.map((v: { status: string }) => v.status)).toEqual(["incomplete"]);
    const uid = ls.json.versions[0].uid;
    expect(stderr).toContain(uid);
    const asBase = await env.image(["backup", source, "vm", "--from", uid, ...BS]);
    expect(asBase.exitCode).toBe(2);
    expect(asBase.stderr).toContain("incomplete");
    // A full backup after it is whole, and a restore of it stopped by Ctrl-C leaves nothing at the target.
    const next = await env.backup(source, "vm", BS);
    const out = join(env.dir, "out.img");
    const restore = spawnBlaine(imageArgs(["restore", next, out]), { env: { BLAINE_STOP_AT: "image-block-restored:5" } });
    await waitFor(() => isStopped(restore.pid), 60_000, "the restore to stop at its fifth block");
    restore.kill("SIGINT");
    restore.kill("SIGCONT");
    expect(await restore.exited).toBe(130);
    expect(await new Response(restore.stderr).text()).toContain(`interrupted: nothing was written to ${out}`);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(env.dir).filter((name) => name.includes("blaine-restore"))).toEqual([]);
    expect((await env.image(["restore", next, out])).exitCode).toBe(0);
    expect(sameBytes(source, out)).toBe(true);
  });

  test("issue 15: a backup and a cleanup at the same time never lose a chunk the backup references", async () => {
    const env = await newEnv(backend, store);
    const source = join(env.dir, "vm.img");
    writeFileSync(source, Buffer.from(randomBytes(3 * MiB, 60)));
    const other = join(env.dir, "other.img");
    writeFileSync(other, Buffer.from(randomBytes(BLOCK, 61)));
    const kept = await env.backup(other, "other", BS);
    for (let round = 0; round < 2; round++) {
      // The previous round's version removed: its chunks are candidates a cleanup may take while the next backup wants them.
      const versions = ((await env.image(["ls", "vm", "--json"])).json.versions as { uid: string }[]);
      for (const version of versions) expect((await env.image(["rm", version.uid, "--force"])).exitCode).toBe(0);
      const backup = spawnBlaine(["image", "backup", source, "vm", "--json", ...BS, "--db", env.db, "--store", env.store], { env: store === "s3" ? s3?.env : undefined });
      let done = false;
      const exited = backup.exited.then((code) => ((done = true), code));
      let cleanups = 0;
      while (!done || cleanups < 2) {
        const cleanup = await env.image(["cleanup", "--grace", "0", ...(cleanups % 2 ? ["--full"] : [])]);
        expect([0, 1]).toContain(cleanup.exitCode);
        cleanups++;
      }
      const code = await exited;
      const [stdout, stderr] = [await new Response(backup.stdout).text(), await new Response(backup.stderr).text()];
      expect(stderr).not.toContain("blaine:");
      expect(code).toBe(0);
      const uid = JSON.parse(stdout).uid;
      const out = join(env.dir, `out${round}.img`);
      rmSync(out, { force: true });
      const restore = await env.image(["restore", uid, out]);
      expect(restore.stderr).toBe("");
      expect(restore.exitCode).toBe(0);
      expect(sameBytes(source, out)).toBe(true);
    }
    expect((await env.image(["scrub", kept])).exitCode).toBe(0);
  });

  test("issue 15: a version restores from the store alone (db-less), and import UID rebuilds a lost catalog", async () => {
    const env = await newEnv(backend, store);
    const source = join(env.dir, "vm.img");
    makeImage(source);
    const uid = await env.backup(source, "vm", BS);
    const lsNoDb = await env.imageNoDb(["ls", "--json"]);
    expect(lsNoDb.json.versions.map((v: { uid: string }) => v.uid)).toEqual([uid]);
    const out = join(env.dir, "out.img");
    const restore = await env.imageNoDb(["restore", uid.slice(0, 8), out, "--sparse"]);
    expect(restore.exitCode).toBe(0);
    expect(sameBytes(source, out)).toBe(true);
    if (backend === "sqlite") {
      rmSync(env.db);
      for (const suffix of ["-wal", "-shm"]) rmSync(`${env.db}${suffix}`, { force: true });
      expect((await env.image(["import", uid])).exitCode).toBe(0);
      expect((await env.image(["ls", "--json"])).json.versions[0]).toMatchObject({ uid, status: "valid", name: "vm" });
    }
  });
});

describe("block images: devices", () => {
  const reason = process.getuid?.() !== 0 ? "needs root (losetup)" : !Bun.which("losetup") ? "losetup is missing" : undefined;
  if (reason) console.warn(`loop-device image test skipped: ${reason}`);
  test.skipIf(Boolean(reason))("issue 15: a loop device is backed up and restored onto another loop device, written in place (its node's owner and mode untouched)", async () => {
    const dir = mkdtempSync("/tmp/blaine-image-loop-");
    roots.push(dir);
    const env = imageEnv(dir, join(dir, "images.db"));
    const file = join(dir, "disk.img");
    makeImage(file);
    const targetFile = join(dir, "target.img");
    writeFileSync(targetFile, "");
    truncateSync(targetFile, 8 * MiB);
    const attach = (path: string) => Bun.spawnSync(["losetup", "--find", "--show", path]).stdout.toString().trim();
    const loop = attach(file);
    const target = attach(targetFile);
    try {
      expect(loop).toMatch(/^\/dev\/loop\d+$/);
      const uid = await env.backup(loop, "loop", BS);
      expect((await env.image(["ls", "--json"])).json.versions[0].size).toBe(8 * MiB);
      const refused = await env.image(["restore", uid, target]);
      expect(refused.exitCode).toBe(2);
      // As a VM's disk would be: its node given to the hypervisor, which a file target's owner and mode must not reach.
      const node = statSync(target);
      chmodSync(target, 0o660);
      chownSync(target, 64055, 64055);
      try {
        expect((await env.image(["restore", uid, target, "--force"])).exitCode).toBe(0);
        const after = statSync(target);
        expect({ device: after.isBlockDevice(), rdev: after.rdev, mode: after.mode & 0o7777, uid: after.uid, gid: after.gid }).toEqual({ device: true, rdev: node.rdev, mode: 0o660, uid: 64055, gid: 64055 });
      } finally {
        chownSync(target, node.uid, node.gid);
        chmodSync(target, node.mode & 0o7777);
      }
      Bun.spawnSync(["sync"]);
      expect(sameBytes(file, target)).toBe(true);
    } finally {
      for (const device of [loop, target]) if (device) Bun.spawnSync(["losetup", "-d", device]);
    }
  });
});

describe("block images: a full target disk", () => {
  test.skipIf(!canMount())("a restore onto a disk that fills up stops with the write's error and leaves nothing there", async () => {
    const dir = mkdtempSync("/tmp/blaine-image-full-");
    roots.push(dir);
    const env = imageEnv(dir, join(dir, "images.db"));
    const source = join(dir, "vm.img");
    writeFileSync(source, randomBytes(8 * MiB, 60));
    const uid = await env.backup(source, "vm", BS);
    const small = join(dir, "small");
    const unmount = mountTmpfs(small, "2m");
    try {
      // The blocks are written by the worker threads: the first write that finds no room stops the restore.
      const restore = await env.image(["restore", uid, join(small, "out.img")]);
      expect(restore.exitCode).not.toBe(0);
      expect(restore.stderr).toContain("ENOSPC: no space left on device");
      expect(readdirSync(small)).toEqual([]);
    } finally {
      unmount();
    }
  });
});

if (!Bun.which("tmux")) console.warn("the image terminal test is skipped: tmux is not installed");
test.skipIf(!Bun.which("tmux"))("issue 15: a backup at a terminal shows a progress line (bytes read of planned, written, rate) and a summary; Ctrl-C there exits 130", async () => {
  const dir = mkdtempSync("/tmp/blaine-image-tty-");
  roots.push(dir);
  const env = imageEnv(dir, join(dir, "images.db"));
  const source = join(dir, "vm.img");
  // Text of sixteen letters at random: every block distinct, and slow enough for zstd at level 19 that the line is drawn.
  const letters = Buffer.from(randomBytes(24 * MiB, 80)).map((byte) => 97 + (byte % 16));
  writeFileSync(source, letters);
  const backupArgs = ["image", "backup", source, "vm", "--db", env.db, "--store", env.store, "--compress", "zstd:19"];
  const interrupted = new Terminal(dir, backupArgs);
  try {
    await interrupted.waitForText("vm: ");
    expect(interrupted.screen()).toMatch(/vm: [\d.]+ [KMG]?i?B\/24\.0 MiB read, [\d.]+ [KMG]?i?B written, [\d.]+ [KMG]?i?B\/s/);
    interrupted.type("", "C-c");
    expect(await interrupted.exitCode()).toBe(130);
    expect(interrupted.screen()).toContain("is left incomplete: never a base for --from");
  } finally {
    interrupted.close();
  }
  const whole = new Terminal(dir, ["image", "backup", source, "vm", "--db", env.db, "--store", env.store]);
  try {
    expect(await whole.exitCode()).toBe(0);
    expect(whole.screen()).toMatch(/vm: 24\.0 MiB read, [\d.]+ [KMG]?i?B written, [\d.]+ [KMG]?i?B deduplicated, 0 B sparse, in [\d.]+ s \([\d.]+ [KMG]?i?B\/s\)/);
  } finally {
    whole.close();
  }
  // Without a terminal: no progress line, the same summary.
  const quiet = await env.image(["backup", source, "vm"]);
  expect(quiet.exitCode).toBe(0);
  expect(quiet.stderr).not.toContain("/s ETA");
  expect(quiet.stderr).not.toContain("\r");
  expect(quiet.stderr).toMatch(/vm: 24\.0 MiB read, 0 B written, 24\.0 MiB deduplicated/);
});

test("issue 15: at 4 MiB blocks random data is stored raw (judged on probes), text and partly random blocks compressed; all restore byte for byte", async () => {
  const dir = mkdtempSync("/tmp/blaine-image-probes-");
  roots.push(dir);
  const env = imageEnv(dir, join(dir, "images.db"));
  const source = join(dir, "vm.img");
  const random = randomBytes(4 * MiB, 50);
  const text = textBytes(4 * MiB, 51);
  // Random in its first MiB, where one probe looks: the others find text, so the block is compressed.
  const mixed = Buffer.concat([randomBytes(1 * MiB, 52), textBytes(3 * MiB, 53)]);
  writeFileSync(source, Buffer.concat([random, text, mixed, randomBytes(1000, 54)]));
  const backup = await env.image(["backup", source, "vm", "--json"]);
  expect(backup.exitCode).toBe(0);
  const kind = async (data: Uint8Array) => (await env.readChunk(hashOf(data)))[5];
  expect(await kind(random)).toBe(0);
  expect((await env.readChunk(hashOf(random))).length).toBe(16 + 4 * MiB);
  expect(await kind(text)).toBe(1);
  expect(await kind(mixed)).toBe(1);
  expect((await env.readChunk(hashOf(mixed))).length).toBeLessThan(1.1 * MiB);
  const out = join(dir, "out.img");
  expect((await env.image(["restore", backup.json.uid, out])).exitCode).toBe(0);
  expect(sameBytes(source, out)).toBe(true);
  const scrub = await env.image(["scrub", backup.json.uid]);
  expect(scrub.exitCode).toBe(0);
});

test("issue 15: bad input names the option or file", async () => {
  const dir = mkdtempSync("/tmp/blaine-image-input-");
  roots.push(dir);
  const env = imageEnv(dir, join(dir, "images.db"));
  const missing = await env.image(["backup", join(dir, "nope.img"), "vm"]);
  expect(missing.exitCode).toBe(2);
  expect(missing.stderr).toContain("nope.img");
  const source = join(dir, "vm.img");
  writeFileSync(source, "x");
  const compress = await env.image(["backup", source, "vm", "--compress", "gzip"]);
  expect(compress.exitCode).toBe(2);
  expect(compress.stderr).toContain("--compress");
  const hints = join(dir, "hints.json");
  writeFileSync(hints, JSON.stringify([{ offset: 0, length: 1, exists: "maybe" }]));
  const bad = await env.image(["backup", source, "vm", "--hints", hints]);
  expect(bad.exitCode).toBe(2);
  expect(bad.stderr).toContain("exists");
  expect(existsSync(join(dir, "store", "versions"))).toBe(true);
});

test("kill -9: a store killed while it was first created (its folders made, store.json not yet written) is finished by the next backup, not refused", async () => {
  const env = await newEnv("sqlite");
  const source = join(env.dir, "vm.img");
  makeImage(source);
  await blaineKilledAt("image-store-folders-made:1", ["image", "backup", source, "vm", ...BS, "--db", env.db, "--store", env.store]);
  expect(existsSync(join(env.store, "store.json"))).toBe(false);
  const uid = await env.backup(source, "vm", BS);
  const target = join(env.dir, "restored.img");
  expect((await env.image(["restore", uid, target])).exitCode).toBe(0);
  expect(sameBytes(target, source)).toBe(true);
});

test("an image catalog written before image_blocks was WITHOUT ROWID (migrations 0000-0002) is migrated in place: every version restores, rows kept", async () => {
  const env = await newEnv("sqlite");
  const source = join(env.dir, "vm.img");
  makeImage(source);
  const first = await env.backup(source, "vm", BS);
  const firstImage = join(env.dir, "first-source.img");
  cpSync(source, firstImage);
  writeAt(source, 2 * MiB, randomBytes(BLOCK, 30));
  const second = await env.backup(source, "vm", ["--from", first, ...BS]);
  // The same rows in a catalog laid out as the release before migration 0003 made it.
  const oldDb = join(env.dir, "old.db");
  const sqlite = sqliteCatalogAsOf(join(import.meta.dir, "..", "lib", "image", "migrations", "sqlite"), 3, oldDb);
  expect(sqlite.query("SELECT sql FROM sqlite_master WHERE name = 'image_blocks'").get()).not.toMatchObject({ sql: expect.stringContaining("WITHOUT ROWID") });
  // Its versions held whole block lists (no inheritance yet): each version's rows are its resolved blocks.
  const current = new ImageCatalog(await openImageSql(env.db, { create: false }));
  const insertBlock = sqlite.query("INSERT INTO image_blocks (version_uid, idx, hash, size, valid) VALUES (?, ?, ?, ?, ?)");
  for (const uid of [first, second]) for await (const row of current.allBlocks(uid)) insertBlock.run(uid, row.idx, row.hash, row.size, row.valid ? 1 : 0);
  await current.close();
  sqlite.exec(`ATTACH '${env.db}' AS cur`);
  const oldVersionColumns = (sqlite.query("PRAGMA table_info(image_versions)").all() as { name: string }[]).map((column) => column.name).join(", ");
  sqlite.exec(`INSERT INTO image_versions SELECT ${oldVersionColumns} FROM cur.image_versions`);
  sqlite.exec("INSERT INTO image_chunks SELECT * FROM cur.image_chunks");
  const rows = sqlite.query("SELECT count(*) AS n FROM image_blocks").get() as { n: number };
  sqlite.exec("DETACH cur");
  sqlite.close();
  rmSync(`${env.db}-wal`, { force: true });
  rmSync(`${env.db}-shm`, { force: true });
  cpSync(oldDb, env.db);

  for (const [uid, image] of [[second, source], [first, firstImage]]) {
    const target = join(env.dir, `${uid}.img`);
    expect((await env.image(["restore", uid, target])).exitCode).toBe(0);
    expect(sameBytes(target, image)).toBe(true);
  }
  const upgraded = new Database(env.db, { readonly: true });
  expect((upgraded.query("SELECT sql FROM sqlite_master WHERE name = 'image_blocks'").get() as { sql: string }).sql).toContain("WITHOUT ROWID");
  expect(upgraded.query("SELECT count(*) AS n FROM image_blocks").get()).toEqual(rows);
  expect(upgraded.query("SELECT count(*) AS n FROM sqlite_master WHERE name = 'image_blocks_keyed'").get()).toEqual({ n: 0 });
  expect(upgraded.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
  upgraded.close();
  // And it takes new versions on the new layout.
  writeAt(source, 4 * MiB, randomBytes(BLOCK, 31));
  const third = await env.backup(source, "vm", ["--from", second, ...BS]);
  const target = join(env.dir, "third.img");
  expect((await env.image(["restore", third, target])).exitCode).toBe(0);
  expect(sameBytes(target, source)).toBe(true);
});

test("a bad value in blaine.toml's [image] is named by its file and key, not by a flag that was never given", async () => {
  const dir = mkdtempSync("/tmp/blaine-image-config-");
  roots.push(dir);
  const config = join(dir, "blaine.toml");
  for (const [key, value] of [["block-size", '"5x"'], ["keep-days", '"abc"'], ["grace", '"soon"'], ["compress", '"lz4"']] as const) {
    writeFileSync(config, `[image]\ndb = "images.db"\nstore = "store"\n${key} = ${value}\n`);
    const listed = await blaine(["image", "ls", "--config", config]);
    expect(listed.exitCode).toBe(2);
    expect(listed.stderr).toContain(`${config}: ${key} in [image]`);
    expect(listed.stderr).not.toContain(`--${key}`);
  }
});

test("TestS3CredentialsInUrl: an s3:// store with credentials in its URL is refused (exit 2) without showing them, before anything is made: --store of ls and backup, store in blaine.toml", async () => {
  const dir = mkdtempSync("/tmp/blaine-image-s3-url-");
  roots.push(dir);
  const source = join(dir, "vm.img");
  makeImage(source);
  const db = join(dir, "images.db");
  // A secret as AWS makes them may hold a / (typed unencoded, it splits the URL elsewhere); a key id alone is refused too.
  for (const url of ["s3://KEY:TOPSECRETX@images/pre", "s3://KEY:TOP/SECRETX+9@images/pre", "s3://TOPSECRETX@images/pre"]) {
    for (const args of [["ls", "--store", url], ["ls", "--store", url, "--json"], ["backup", source, "vm", "--db", db, "--store", url, ...BS]]) {
      const result = await blaine(["image", ...args]);
      expect(result.exitCode).toBe(2);
      expect(result.stdout + result.stderr).not.toContain("SECRETX");
      expect(result.stderr).toContain("--store s3://…@images/pre: no credentials in the URL; put them in [image] of blaine.toml (s3-access-key-id, s3-secret-access-key)");
      expect(result.stderr).toContain("S3_SECRET_ACCESS_KEY");
    }
  }
  // KEY:SECRET without the @ is no bucket, and not shown either.
  const noAt = await blaine(["image", "ls", "--store", "s3://KEY:TOPSECRETX/images"]);
  expect(noAt.exitCode).toBe(2);
  expect(noAt.stderr).toContain("--store s3://…/images: not s3://bucket/prefix");
  expect(noAt.stdout + noAt.stderr).not.toContain("SECRETX");
  writeFileSync(join(dir, "blaine.toml"), `[image]\ndb = "images.db"\nstore = "s3://KEY:TOPSECRETX@images/pre"\n`);
  const configured = await blaine(["image", "ls"], { cwd: dir });
  expect(configured.exitCode).toBe(2);
  expect(configured.stdout + configured.stderr).not.toContain("SECRETX");
  expect(configured.stderr).toContain(`${join(dir, "blaine.toml")}: store in [image] s3://…@images/pre: no credentials in the URL`);
  // No catalog, no store, no temp: only what the test wrote.
  expect(readdirSync(dir).sort()).toEqual(["blaine.toml", "vm.img"]);
});

describe.skipIf(Boolean(noS3))("block images: S3 settings", () => {
  test("issue 15: S3 endpoint and credentials come from blaine.toml's [image] table, never argv; a refused key is an error that shows no secret", async () => {
    const dir = mkdtempSync("/tmp/blaine-image-s3-");
    roots.push(dir);
    const server = s3 as TestS3;
    const source = join(dir, "vm.img");
    makeImage(source);
    const config = (key: string, secret: string) =>
      `[image]\ndb = "images.db"\nstore = "s3://${server.bucket}/from-toml"\ns3-endpoint = "${server.endpoint}"\ns3-access-key-id = "${key}"\ns3-secret-access-key = "${secret}"\n`;
    writeFileSync(join(dir, "blaine.toml"), config("S3RVER", "S3RVER"));
    const { blaine } = await import("./helpers/cli.ts");
    const clean = { S3_ENDPOINT: "", S3_ACCESS_KEY_ID: "", S3_SECRET_ACCESS_KEY: "", AWS_ACCESS_KEY_ID: "", AWS_SECRET_ACCESS_KEY: "" };
    const backup = await blaine(["image", "backup", source, "vm", "--json", ...BS], { cwd: dir, env: clean });
    expect(backup.exitCode).toBe(0);
    const out = join(dir, "out.img");
    expect((await blaine(["image", "restore", backup.json.uid, out], { cwd: dir, env: clean })).exitCode).toBe(0);
    expect(sameBytes(source, out)).toBe(true);
    // s3rver checks the key id (not the signature): an unknown key is refused.
    writeFileSync(join(dir, "blaine.toml"), config("UNKNOWN", "the-secret-4711"));
    const wrong = await blaine(["image", "ls", "--json"], { cwd: dir, env: clean });
    const scrub = await blaine(["image", "scrub", backup.json.uid], { cwd: dir, env: clean });
    expect(scrub.exitCode).not.toBe(0);
    expect(scrub.stderr).toContain("Access Key Id");
    expect(wrong.stdout + wrong.stderr + scrub.stdout + scrub.stderr).not.toContain("the-secret-4711");
  });
});
