import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import { MiB, hashOf, randomBytes, writeAt } from "./helpers/image-env.ts";
import { postgresMissing, startPostgres, type TestPostgres } from "./helpers/postgres.ts";
import { s3Missing, startS3, type TestS3 } from "./helpers/s3rver.ts";
import { blaine, isStopped, spawnBlaine, waitFor } from "./helpers/cli.ts";
import { crashAt, expectDiedAt } from "./helpers/crash.ts";
import { canMount, mountTmpfs } from "./helpers/mounts.ts";
import { loopFsMissing, mountLoopFs, removeRoots, tempDir, volumeEnv, type LoopFs, type VolumeEnv } from "./helpers/volume-env.ts";

/**
 * Volume archives (issue 16): sessions from reflink snapshots on real btrfs
 * and XFS loop devices (changes found from extents), the full-read
 * fallback, session names across clock shifts, prune ranges, kill -9 during
 * send and prune, an unmounted destination; the catalog tests also on a
 * real PostgreSQL, the destination on a real S3 server. 64 KiB chunks
 * (--chunk-factor 0) keep volumes small.
 */
const CHUNK = 64 * 1024;
const roots: string[] = [];
const pgMissing = postgresMissing();
if (pgMissing) console.warn(`volume tests on PostgreSQL skipped: ${pgMissing}`);
const noS3 = s3Missing();
if (noS3) console.warn(`volume tests on S3 skipped: ${noS3}`);
let postgres: TestPostgres | undefined;
let s3: TestS3 | undefined;

beforeAll(async () => {
  if (!pgMissing) postgres = await startPostgres();
  if (!noS3) s3 = await startS3("volumes");
}, 60_000);
afterAll(() => {
  postgres?.stop();
  s3?.stop();
  removeRoots(roots);
});

/** An archive of SOURCE (a directory) with its catalog on `backend` and its destination a directory, or S3. */
async function newArchive(source: string, backend: "sqlite" | "postgres" = "sqlite", destKind: "directory" | "s3" = "directory"): Promise<VolumeEnv & { storeDir: string }> {
  const dir = tempDir("blaine-volume-", roots);
  const db = backend === "postgres" ? await (postgres as TestPostgres).createDatabase() : join(dir, "volumes.db");
  const storeDir = join(dir, "dest", "archive");
  mkdirSync(join(dir, "dest"));
  const dest = destKind === "s3" ? `s3://${(s3 as TestS3).bucket}/v${Math.random().toString(36).slice(2, 10)}` : `internal:${join(dir, "dest")}`;
  const env = volumeEnv({ dir, source, db, dest, storeDir, env: destKind === "s3" ? (s3 as TestS3).env : {} });
  await env.ok(["arch-init", "--source", source, "--dest", dest, "--subdir", "archive", "--chunk-factor", "0"]);
  return { ...env, storeDir };
}

/** An archive of SOURCE on a 64 MiB tmpfs standing for a destination disk, with vm1 added and sent once; `disk` unmounts and mounts it again. */
async function sentToMountedDisk(source: string) {
  const dir = tempDir("blaine-volume-mnt-", roots);
  const mountpoint = join(dir, "disk");
  const disk = { unmount: mountTmpfs(mountpoint, "64m"), remount: () => void (disk.unmount = mountTmpfs(mountpoint, "64m")) };
  try {
    const env = volumeEnv({ dir, source, db: join(dir, "volumes.db"), dest: `internal:${mountpoint}` });
    await env.ok(["arch-init", "--source", source, "--dest", `internal:${mountpoint}`, "--chunk-factor", "0"]);
    await env.ok(["add", "vm1"]);
    await env.ok(["send"]);
    return { dir, env, mountpoint, disk };
  } catch (error) {
    disk.unmount();
    throw error;
  }
}

/** Every session of `name` received and compared with what the volume held when it was sent. */
async function expectSessionsEqual(env: VolumeEnv, name: string, expected: ReadonlyMap<string, Uint8Array>): Promise<void> {
  const listed = await env.ok(["list", name]);
  expect(listed.sessions.map((session: { session: string }) => session.session)).toEqual([...expected.keys()]);
  for (const [session, bytes] of expected) {
    const target = join(env.dir, `received-${name}-${session}`);
    await env.ok(["receive", name, "--session", session, "--save-to", target]);
    expect(Buffer.compare(readFileSync(target), Buffer.from(bytes))).toBe(0);
  }
}

/** The chunks (sha256 of each non-zero 64 KiB piece) volumes' contents need. */
function chunksOf(contents: Iterable<Uint8Array>): string[] {
  const hashes = new Set<string>();
  for (const bytes of contents) {
    for (let at = 0; at < bytes.length; at += CHUNK) {
      const piece = bytes.subarray(at, Math.min(bytes.length, at + CHUNK));
      if (piece.some((byte) => byte !== 0)) hashes.add(hashOf(piece));
    }
  }
  return [...hashes].sort();
}

/** A 4 MiB image: 3 MiB random, then a 1 MiB hole. */
function makeVolume(path: string, seed: number): void {
  writeFileSync(path, randomBytes(3 * MiB, seed));
  truncateSync(path, 4 * MiB);
}

describe.each(["btrfs", "xfs"] as LoopFs[])("reflink sessions on a real %s loop device", (fs) => {
  const missing = loopFsMissing(fs);
  if (missing) console.warn(`volume tests on ${fs} skipped: ${missing}`);
  test.skipIf(Boolean(missing))(`issue 16: an image file on ${fs} rewritten in place between sessions: changes found from extents (only they are read), each received session equals the volume byte for byte as it was`, async () => {
    const dir = tempDir(`blaine-volume-${fs}-`, roots);
    const loop = mountLoopFs(dir, fs);
    try {
      const source = join(loop.mountpoint, "vms");
      mkdirSync(source);
      const vm = join(source, "vm1");
      makeVolume(vm, 1);
      const env = await newArchive(source);
      await env.ok(["add", "vm1"]);
      const expected = new Map<string, Uint8Array>();
      const uids: string[] = [];
      const send = async () => {
        const sent = await env.sendRecorded(expected, vm);
        uids.push(sent.uid);
        return sent;
      };
      const first = await send();
      expect(first).toMatchObject({ volume: "vm1", method: "first send", bytesRead: 3 * MiB });
      // In place: two chunks of the data and one in the hole, then a chunk at the very end.
      writeAt(vm, 5 * CHUNK, randomBytes(2 * CHUNK, 2));
      writeAt(vm, 3 * MiB + CHUNK, randomBytes(100, 3));
      const second = await send();
      expect(second.method).toBe("extents");
      expect(second.bytesRead).toBe(3 * CHUNK);
      writeAt(vm, 4 * MiB - 10, randomBytes(10, 4));
      writeAt(vm, 0, randomBytes(CHUNK, 1)); // the same bytes again: read (its extent moved), stored nowhere
      const third = await send();
      expect(third.bytesRead).toBe(2 * CHUNK);
      expect(third.bytesSent).toBeLessThan(CHUNK + 1000);
      const unchanged = await send();
      expect(unchanged).toMatchObject({ method: "extents", bytesRead: 0, bytesSent: 0 });
      // The image grows by a chunk and a half, then shrinks below where it was.
      appendFileSync(vm, randomBytes(CHUNK + CHUNK / 2, 5));
      expect((await send()).method).toBe("extents");
      truncateSync(vm, 4 * MiB - 3 * CHUNK - 100);
      expect((await send()).method).toBe("extents");
      await expectSessionsEqual(env, "vm1", expected);
      // Each session's document in the store lists only its own blocks and names the session it inherits the rest
      // from; followed through those documents, it lists what the catalog's export (whole) does.
      const storeDoc = (uid: string) => JSON.parse(readFileSync(join(env.storeDir, "versions", `${uid}.json`), "utf8"));
      for (const uid of uids) {
        const file = join(env.dir, `exported-${uid}.json`);
        expect((await blaine(["image", "export", uid, file, "--db", env.db])).exitCode).toBe(0);
        const exported = JSON.parse(readFileSync(file, "utf8"));
        const doc = storeDoc(uid);
        const count = Math.ceil(doc.version.size / doc.version.blockSize);
        const blocks = new Map<number, unknown[]>();
        for (let at = doc; at; at = at.version.inheritsUid ? storeDoc(at.version.inheritsUid) : undefined) {
          for (const block of at.blocks as [number, string | null, number, number][]) if (block[0] < count && !blocks.has(block[0])) blocks.set(block[0], block);
        }
        expect([...blocks.values()].sort((a, b) => (a[0] as number) - (b[0] as number))).toEqual(exported.blocks);
        const { inheritsUid: _, ...versionFields } = doc.version;
        expect(versionFields).toEqual(exported.version);
        expect(exported.formatVersion).toBe(1);
        if (uid !== uids[0]) expect(doc.blocks.length).toBeLessThan(exported.blocks.length);
      }
      // The new snapshot replaced the old: one reflink copy is kept per volume.
      expect(readdirSync(join(source, ".blaine-volume"))).toEqual(["vm1.snap"]);
      expect(env.chunkFiles()).toEqual(chunksOf(expected.values()));
    } finally {
      loop.unmount();
    }
  });

  test.skipIf(Boolean(missing))(`TestGrownByTruncate: an image file on ${fs} whose last chunk was short, grown by truncate (no extent moves), receives whole`, async () => {
    const dir = tempDir(`blaine-volume-grow-${fs}-`, roots);
    const loop = mountLoopFs(dir, fs);
    try {
      const source = join(loop.mountpoint, "vms");
      mkdirSync(source);
      const vm = join(source, "vm1");
      // Data to the end, which is half a chunk in (a whole number of the file system's blocks: nothing is zeroed there).
      writeFileSync(vm, randomBytes(MiB + CHUNK / 2, 60));
      const env = await newArchive(source);
      await env.ok(["add", "vm1"]);
      const expected = new Map<string, Uint8Array>();
      await env.sendRecorded(expected, vm);
      truncateSync(vm, 2 * MiB); // resized as a VM disk is: a hole after the old end
      expect((await env.sendRecorded(expected, vm)).method).toBe("extents");
      await expectSessionsEqual(env, "vm1", expected);
    } finally {
      loop.unmount();
    }
  });
});

/** A plain directory source (ext4 or tmpfs here: no reflinks, so sends read whole volumes and compare). */
function plainSource(): string {
  const source = join(tempDir("blaine-volume-src-", roots), "vms");
  mkdirSync(source);
  return source;
}

test("issue 16: session names are UTC date-times that keep their order across time zones and a clock set back; a second send in the same second gets a later unique name; --session ranges select what list shows", async () => {
  const source = plainSource();
  const vm = join(source, "vm1");
  makeVolume(vm, 5);
  const env = await newArchive(source);
  await env.ok(["add", "vm1"]);
  const sendAt = async (now: string, tz: string) => (await env.ok(["send", "vm1"], { BLAINE_NOW: now, TZ: tz })).volumes[0].session as string;
  const names = [
    await sendAt("2026-03-29T00:59:59Z", "Europe/Berlin"), // 01:59:59 local, just before DST starts
    await sendAt("2026-03-29T01:00:00Z", "Europe/Berlin"), // 03:00:00 local: an hour "skipped"
    await sendAt("2026-03-29T01:30:00Z", "America/New_York"),
    await sendAt("2026-03-29T00:30:00Z", "UTC"), // the clock set back an hour
    await sendAt("2026-03-29T00:30:00Z", "UTC"), // and again in the same second
  ];
  expect(names).toEqual(["20260329-005959", "20260329-010000", "20260329-013000", "20260329-013001", "20260329-013002"]);
  const listed = (await env.ok(["list", "vm1"])).sessions.map((session: { session: string }) => session.session);
  expect(listed).toEqual(names);
  // blaine image ls shows the same sessions as versions, in the same order.
  const { blaine } = await import("./helpers/cli.ts");
  const images = await blaine(["image", "ls", "vm1", "--db", env.db, "--json"]);
  expect(images.json.versions.map((version: { snapshot: string }) => version.snapshot)).toEqual(names);
  // A range selects exactly the sessions list shows within it.
  const pruned = await env.ok(["prune", "vm1", "--session", `${names[1]},${names[3]}`]);
  expect(pruned.pruned).toEqual([{ volume: "vm1", sessions: names.slice(1, 4) }]);
  expect((await env.ok(["list", "vm1"])).sessions.map((session: { session: string }) => session.session)).toEqual([names[0], names[4]]);
});

test("issue 16: on a file system without reflinks every send reads the volume and stores only chunks whose hash changed; sessions equal the volume as it was", async () => {
  const source = plainSource();
  const vm = join(source, "vm1");
  makeVolume(vm, 6);
  const env = await newArchive(source);
  // Options before the verb as well as after it.
  const added = await env.volume(["--json", "add", "vm1"]);
  expect(added.exitCode).toBe(0);
  const expected = new Map<string, Uint8Array>();
  for (let round = 0; round < 3; round++) {
    if (round > 0) writeAt(vm, round * 7 * CHUNK, randomBytes(CHUNK, 10 + round));
    const sent = await env.sendRecorded(expected, vm);
    if (round > 0) {
      expect(sent.method).toBe("full read");
      expect(sent.bytesRead).toBe(4 * MiB); // the hole too: a full read compares every chunk
      expect(sent.bytesSent).toBeLessThan(CHUNK + 1000);
    }
  }
  await expectSessionsEqual(env, "vm1", expected);
  const verified = await env.ok(["verify", "vm1"]);
  expect(verified).toMatchObject({ chunksChecked: 48, badChunks: [] });
  // A chunk rotten on the destination: verify marks every session holding it invalid (exit 4); put back, the next
  // verify finds all good and makes the session valid again.
  const chunk = env.chunkFiles()[0]!;
  const file = join(env.storeDir, "chunks", chunk.slice(0, 2), chunk);
  const good = readFileSync(file);
  const rotten = Buffer.from(good);
  rotten[rotten.length - 3] ^= 0x10;
  writeFileSync(file, rotten);
  const bad = await env.volume(["verify", "vm1", "--json"]);
  expect(bad.exitCode).toBe(4);
  expect(bad.json.invalidSessions.length).toBeGreaterThan(0);
  writeFileSync(file, good);
  const again = await env.ok(["verify", "vm1"]);
  expect(again.badChunks).toEqual([]);
  expect(again.revalidatedSessions).toEqual([verified.session]);
});

// PostgreSQL's run is skipped (its reason printed above) when the server is missing, not left out.
for (const backend of ["sqlite", "postgres"] as const) (backend === "postgres" && pgMissing ? describe.skip : describe)(`prune on a ${backend} catalog`, () => {
  test(`issue 16: prune of a range and --all-before (${backend}): no remaining session changes, every one still receives as it was sent, and the destination holds exactly the chunks they need`, async () => {
    const source = plainSource();
    const vm = join(source, "vm1");
    makeVolume(vm, 7);
    const env = await newArchive(source, backend);
    await env.ok(["add", "vm1"]);
    const expected = new Map<string, Uint8Array>();
    for (let round = 0; round < 8; round++) {
      // The same chunks each time: each session's are its own, so a prune frees them.
      if (round > 0) writeAt(vm, 9 * CHUNK, randomBytes(2 * CHUNK, 20 + round));
      await env.sendRecorded(expected, vm, { BLAINE_NOW: `2026-05-0${1 + round}T12:00:00Z` });
    }
    const names = [...expected.keys()];
    const range = await env.ok(["prune", "vm1", "--session", `${names[2]},${names[4]}`]);
    expect(range.pruned[0].sessions).toEqual(names.slice(2, 5));
    expect(range.chunksFreed).toBeGreaterThan(0);
    for (const name of names.slice(2, 5)) expected.delete(name);
    expect(env.chunkFiles()).toEqual(chunksOf(expected.values()));
    const before = await env.ok(["prune", "--all-before", "--session", names[6]!]);
    expect(before.pruned[0].sessions).toEqual([names[0], names[1], names[5]]);
    for (const name of [names[0]!, names[1]!, names[5]!]) expected.delete(name);
    await expectSessionsEqual(env, "vm1", expected);
    expect(env.chunkFiles()).toEqual(chunksOf(expected.values()));
    // The newest session stays: the next send builds on it.
    const newest = await env.volume(["prune", "vm1", "--session", names[7]!]);
    expect(newest.exitCode).toBe(2);
    expect(newest.stderr).toContain("newest session of vm1");
  });
});

test("issue 16.1: a prune frees only the chunks its own removal left unreferenced; a blaine image rm's candidates in the same catalog keep their grace period", async () => {
  const { blaine } = await import("./helpers/cli.ts");
  const source = plainSource();
  const vm = join(source, "vm1");
  makeVolume(vm, 80);
  const env = await newArchive(source);
  await env.ok(["add", "vm1"]);
  const expected = new Map<string, Uint8Array>();
  const sent: { uid: string; session: string }[] = [];
  for (let round = 0; round < 3; round++) {
    if (round > 0) writeAt(vm, 0, randomBytes(2 * CHUNK, 80 + round));
    sent.push((await env.ok(["send"], { BLAINE_NOW: `2026-06-0${1 + round}T12:00:00Z` })).volumes[0]);
    expected.set(sent[round]!.session, readFileSync(vm));
  }
  // The first session removed through blaine image: its own two chunks are candidates in their grace period (a backup beside may still want them).
  const imageArgs = (args: string[]) => ["image", ...args, "--db", env.db, "--store", env.storeDir, "--json"];
  expect((await blaine(imageArgs(["rm", sent[0]!.uid, "--force"]))).exitCode).toBe(0);
  const inGrace = expected.get(sent[0]!.session)!;
  expected.delete(sent[0]!.session);
  const pruned = await env.ok(["prune", "vm1", "--session", sent[1]!.session]);
  expected.delete(sent[1]!.session);
  expect(pruned.chunksFreed).toBe(2);
  expect(env.chunkFiles()).toEqual(chunksOf([...expected.values(), inGrace]));
  await expectSessionsEqual(env, "vm1", expected);
  // Past the grace period (here: none), cleanup frees them.
  expect((await blaine(imageArgs(["cleanup", "--grace", "0"]))).json.chunksFreed).toBe(2);
  expect(env.chunkFiles()).toEqual(chunksOf(expected.values()));
});

test("issue 16: a prune while a blaine image cleanup of the same catalog is deleting leaves that cleanup's chunks to it: a send that needs them again writes them after it, and every session receives as it was sent", async () => {
  const { blaine, isStopped, spawnBlaine, waitFor } = await import("./helpers/cli.ts");
  const source = plainSource();
  const vm = join(source, "vm1");
  const first = randomBytes(3 * MiB, 50);
  writeFileSync(vm, first);
  truncateSync(vm, 4 * MiB);
  const env = await newArchive(source);
  await env.ok(["add", "vm1"]);
  const expected = new Map<string, Uint8Array>();
  const sendAt = async (day: number) => {
    const sent = await env.sendRecorded(expected, vm, { BLAINE_NOW: `2026-08-0${day}T00:00:00Z` });
    return sent;
  };
  const a = await sendAt(1);
  const second = randomBytes(3 * MiB, 51);
  writeAt(vm, 0, second);
  await sendAt(2);
  writeAt(vm, 0, randomBytes(CHUNK, 52));
  const d = await sendAt(3);
  writeAt(vm, 0, second.subarray(0, CHUNK));
  await sendAt(4);
  // The first session goes through blaine image, whose cleanup then deletes its 48 chunks and stops after one.
  const imageArgs = (args: string[]) => ["image", ...args, "--db", env.db, "--store", env.storeDir];
  expect((await blaine(imageArgs(["rm", a.uid, "--force"]))).exitCode).toBe(0);
  expected.delete(a.session);
  const cleanup = spawnBlaine(imageArgs(["cleanup", "--grace", "0"]), { env: { BLAINE_STOP_AT: "image-chunk-deleted:1" } });
  try {
    await waitFor(() => isStopped(cleanup.pid) || cleanup.exitCode !== null, 60_000, "the cleanup to stop after its first chunk");
    expect(cleanup.exitCode).toBeNull();
    // Meanwhile a prune of the volume, and a send of the first content again (its chunks are being deleted).
    expect((await env.ok(["prune", "vm1", "--session", d.session])).freeingDeferred).toBe(true);
    expected.delete(d.session);
    writeAt(vm, 0, first);
    const send = spawnBlaine(["volume", "send", "--db", env.db, "--json"], { env: { BLAINE_NOW: "2026-08-05T00:00:00Z" } });
    await waitFor(() => send.exitCode !== null, 3000, "the send").catch(() => {});
    cleanup.kill("SIGCONT");
    expect(await cleanup.exited).toBe(0);
    expect(await send.exited).toBe(0);
    expected.set(JSON.parse(await new Response(send.stdout).text()).volumes[0].session, readFileSync(vm));
  } finally {
    cleanup.kill("SIGCONT");
  }
  await expectSessionsEqual(env, "vm1", expected);
  // What the prune left to free goes with the next cleanup.
  expect((await blaine(imageArgs(["cleanup", "--grace", "0"]))).exitCode).toBe(0);
  expect(env.chunkFiles()).toEqual(chunksOf(expected.values()));
});

describe("kill -9", () => {
  const sendPoints = [
    ...["image-chunk-stored:3", "volume-send-blocks-written:1", "volume-send-session-valid:1"].map((point) => ({ point, backend: "sqlite" as const })),
    ...(pgMissing ? [] : [{ point: "image-chunk-stored:3", backend: "postgres" as const }]),
  ];
  test.each(sendPoints)(
    "issue 16: a send killed at $point ($backend catalog) is recovered by the next send; every session receives as it was sent and no chunk is left behind",
    async ({ point, backend }) => {
      const source = plainSource();
      const vm = join(source, "vm1");
      makeVolume(vm, 8);
      const env = await newArchive(source, backend);
      await env.ok(["add", "vm1"]);
      const expected = new Map<string, Uint8Array>();
      const first = (await env.ok(["send"], { BLAINE_NOW: "2026-06-01T00:00:00Z" })).volumes[0];
      expected.set(first.session, readFileSync(vm));
      writeAt(vm, 0, randomBytes(8 * CHUNK, 30));
      const crash = crashAt(point);
      expectDiedAt(await env.volume(["send"], { BLAINE_NOW: "2026-06-02T00:00:00Z", ...crash.env }), crash, point);
      if (point === "volume-send-session-valid:1") expected.set("20260602-000000", readFileSync(vm));
      // What the killed send stored is needed by no session once those chunks are rewritten again.
      writeAt(vm, 0, randomBytes(8 * CHUNK, 31));
      const next = (await env.ok(["send"], { BLAINE_NOW: "2026-06-03T00:00:00Z" })).volumes[0];
      expected.set(next.session, readFileSync(vm));
      await expectSessionsEqual(env, "vm1", expected);
      expect(env.chunkFiles()).toEqual(chunksOf(expected.values()));
      const { blaine } = await import("./helpers/cli.ts");
      const versions = (await blaine(["image", "ls", "--db", env.db, "--json"])).json.versions;
      expect(versions.map((version: { status: string }) => version.status)).toEqual([...expected.keys()].map(() => "valid"));
    },
  );

  test("kill -9: a receive's temp beside --save-to is removed by the next receive", async () => {
    const source = plainSource();
    const vm = join(source, "vm1");
    makeVolume(vm, 12);
    const env = await newArchive(source);
    await env.ok(["add", "vm1"]);
    await env.ok(["send"]);
    const target = join(env.dir, "vm1.img");
    const temps = () => readdirSync(env.dir).filter((name) => name.startsWith(".vm1.img.") && name.endsWith(".tmp"));
    const crash = crashAt("image-block-restored:3");
    expectDiedAt(await env.volume(["receive", "vm1", "--save-to", target], crash.env), crash, "image-block-restored:3");
    expect(temps()).toHaveLength(1);
    const again = await env.volume(["receive", "vm1", "--save-to", target]);
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toContain(`removed 1 temp file of a restore killed before it finished, beside ${target}`);
    expect(temps()).toEqual([]);
    expect(Buffer.compare(readFileSync(target), readFileSync(vm))).toBe(0);
  });

  const prunePoints = [
    ...["volume-prune-noted:1", "volume-prune-docs-removed:1", "volume-prune-versions-removed:1", "image-chunk-deleted:2"].map((point) => ({ point, backend: "sqlite" as const })),
    ...(pgMissing ? [] : ["volume-prune-versions-removed:1", "image-chunk-deleted:2"].map((point) => ({ point, backend: "postgres" as const }))),
  ];
  test.each(prunePoints)(
    "issue 16: a prune killed at $point ($backend catalog) is finished by the next command; every remaining session receives as it was sent",
    async ({ point, backend }) => {
      const source = plainSource();
      const vm = join(source, "vm1");
      makeVolume(vm, 9);
      const env = await newArchive(source, backend);
      await env.ok(["add", "vm1"]);
      const expected = new Map<string, Uint8Array>();
      for (let round = 0; round < 5; round++) {
        if (round > 0) writeAt(vm, 6 * CHUNK, randomBytes(3 * CHUNK, 40 + round));
        await env.sendRecorded(expected, vm, { BLAINE_NOW: `2026-07-0${1 + round}T00:00:00Z` });
      }
      const names = [...expected.keys()];
      const crash = crashAt(point);
      expectDiedAt(await env.volume(["prune", "vm1", "--session", `${names[1]},${names[3]}`], crash.env), crash, point);
      // The next writing command (here a send of nothing new) finishes the prune first.
      const next = (await env.ok(["send"], { BLAINE_NOW: "2026-07-09T00:00:00Z" })).volumes[0];
      for (const name of names.slice(1, 4)) expected.delete(name);
      expected.set(next.session, readFileSync(vm));
      await expectSessionsEqual(env, "vm1", expected);
      expect(env.chunkFiles()).toEqual(chunksOf(expected.values()));
    },
  );

  test.each(["volume-arch-delete-noted:1", "volume-prune-docs-removed:1", "image-chunk-deleted:1", "volume-arch-delete-doc-removed:1"])(
    "issue 16.2: an arch-delete killed at %s leaves the archive marked as being deleted; other commands say so, the next arch-delete finishes it without asking again",
    async (point) => {
      const source = plainSource();
      const vm = join(source, "vm1");
      makeVolume(vm, 90);
      const env = await newArchive(source);
      await env.ok(["add", "vm1"]);
      await env.ok(["send"]);
      const crash = crashAt(point);
      expectDiedAt(await env.volume(["arch-delete", "--unattended"], crash.env), crash, point);
      const list = await env.volume(["list"]);
      expect(list.exitCode).toBe(2);
      expect(list.stderr).toContain("is being deleted");
      expect(list.stderr).toContain("blaine volume arch-delete");
      const deleted = await env.ok(["arch-delete"]);
      expect(deleted.volumes).toBe(1);
      expect(env.chunkFiles()).toEqual([]);
      expect(existsSync(join(env.storeDir, "meta", "volume-archive.json"))).toBe(false);
      const gone = await env.volume(["list"]);
      expect(gone.exitCode).toBe(2);
      expect(gone.stderr).toContain("holds no volume archive");
      // The catalog and destination take a new archive.
      await env.ok(["arch-init", "--source", source, "--dest", `internal:${join(env.dir, "dest")}`, "--subdir", "archive", "--chunk-factor", "0"]);
    },
  );
});

describe("destinations", () => {
  test.skipIf(!canMount())("issue 16.4: arch-init refuses a destination in a mountpoint /etc/fstab lists that is not mounted, naming it; mounted, it is created", async () => {
    const source = plainSource();
    makeVolume(join(source, "vm1"), 11);
    const dir = tempDir("blaine-volume-fstab-", roots);
    const mountpoint = join(dir, "disk");
    mkdirSync(mountpoint);
    const fstab = join(dir, "fstab");
    writeFileSync(fstab, `# a comment\nUUID=0000 / ext4 defaults 0 1\ntmpfs ${mountpoint} tmpfs noauto,size=64m 0 0\n`);
    const env = volumeEnv({ dir, source, db: join(dir, "volumes.db"), dest: `internal:${mountpoint}` });
    const withFstab = { BLAINE_FSTAB: fstab };
    for (const [dest, subdir] of [[mountpoint, ""], [dir, "disk/archive"]] as const) {
      const refused = await env.volume(["arch-init", "--source", source, "--dest", `internal:${dest}`, ...(subdir ? ["--subdir", subdir] : []), "--chunk-factor", "0"], withFstab);
      expect(refused.exitCode).toBe(3);
      expect(refused.stderr).toContain(`${mountpoint} is a mountpoint in ${fstab} that is not mounted`);
      expect(readdirSync(mountpoint)).toEqual([]);
      // Nothing written: not even the catalog file.
      expect((await env.volume(["list"])).stderr).toContain("no volume archive at --db");
    }
    const unmount = mountTmpfs(mountpoint, "64m");
    try {
      await env.ok(["arch-init", "--source", source, "--dest", `internal:${mountpoint}`, "--chunk-factor", "0"], withFstab);
      await env.ok(["add", "vm1"]);
      await env.ok(["send"], withFstab);
    } finally {
      unmount();
    }
  });

  test.skipIf(!canMount())("issue 16: a destination whose disk is not mounted is an error (exit 3) and nothing is written into the empty mountpoint", async () => {
    const source = plainSource();
    makeVolume(join(source, "vm1"), 10);
    const { dir, env, mountpoint, disk } = await sentToMountedDisk(source);
    try {
      disk.unmount();
      for (const verb of [["send"], ["receive", "vm1", "--save-to", join(dir, "out")], ["verify", "vm1"], ["prune", "--all-before", "--session", "20990101-000000"], ["delete", "vm1", "-u"]]) {
        const refused = await env.volume(verb);
        expect(refused.exitCode).toBe(3);
        expect(refused.stderr).toContain("is its disk mounted");
      }
      expect(readdirSync(mountpoint)).toEqual([]);
      disk.remount();
    } finally {
      disk.unmount();
    }
  });

  test.skipIf(!canMount())("issue 16: a destination disk that goes away during a send (lazily unmounted) gets nothing written into the empty mountpoint; the send fails", async () => {
    const { isStopped, spawnBlaine, waitFor } = await import("./helpers/cli.ts");
    const source = plainSource();
    const vm = join(source, "vm1");
    makeVolume(vm, 12);
    const { env, mountpoint, disk } = await sentToMountedDisk(source);
    try {
      writeAt(vm, 0, randomBytes(3 * MiB, 13));
      const send = spawnBlaine(["volume", "send", "--db", env.db], { env: { BLAINE_STOP_AT: "image-chunk-stored:1" } });
      await waitFor(() => isStopped(send.pid) || send.exitCode !== null, 60_000, "the send to stop after its first chunk");
      disk.unmount();
      send.kill("SIGCONT");
      expect(await send.exited).not.toBe(0);
      expect(await new Response(send.stderr).text()).toContain(`${mountpoint}/chunks/`);
      expect(readdirSync(mountpoint)).toEqual([]);
      disk.remount();
    } finally {
      disk.unmount();
    }
  });

  test.skipIf(Boolean(noS3))("issue 16: an S3 destination (s3rver): sessions sent, received equal, pruned", async () => {
    const source = plainSource();
    const vm = join(source, "vm1");
    makeVolume(vm, 11);
    const env = await newArchive(source, "sqlite", "s3");
    await env.ok(["add", "vm1"]);
    const expected = new Map<string, Uint8Array>();
    for (let round = 0; round < 3; round++) {
      if (round > 0) writeAt(vm, round * CHUNK, randomBytes(CHUNK, 50 + round));
      await env.sendRecorded(expected, vm, { BLAINE_NOW: `2026-08-0${1 + round}T00:00:00Z` });
    }
    const names = [...expected.keys()];
    await env.ok(["prune", "vm1", "--session", names[1]!]);
    expected.delete(names[1]!);
    await expectSessionsEqual(env, "vm1", expected);
  });
});

test("issue 16: LVM thin sources without device-mapper say so and exit 2", async () => {
  const dir = tempDir("blaine-volume-lvm-", roots);
  mkdirSync(join(dir, "dest"));
  const env = volumeEnv({ dir, source: "vg0/pool0", db: join(dir, "volumes.db"), dest: `internal:${join(dir, "dest")}` });
  const init = await env.volume(["arch-init", "--source", "vg0/pool0", "--dest", env.dest]);
  expect(init.exitCode).toBe(2);
  expect(init.stderr).toMatch(/device-mapper|lvm2/);
  // Nothing written: no catalog file, nothing at the destination.
  expect(existsSync(join(dir, "volumes.db"))).toBe(false);
  expect(readdirSync(join(dir, "dest"))).toEqual([]);
  // An archive of a thin pool made on a machine that has device-mapper (its catalog's source set so here): the verbs
  // that need LVM say so.
  const images = join(dir, "images");
  mkdirSync(images);
  await env.ok(["arch-init", "--source", images, "--dest", env.dest]);
  const catalog = new Database(join(dir, "volumes.db"));
  catalog.run("UPDATE volume_settings SET value = 'vg0/pool0' WHERE key = 'source'");
  catalog.close();
  const added = await env.volume(["add", "vm1"]);
  expect(added.exitCode).toBe(2);
  expect(added.stderr).toMatch(/device-mapper|lvm2/);
});

test("two arch-inits of one new catalog at once: the one to finish second is refused, the first's archive stays, and the second's destination can take an archive again", async () => {
  const dir = tempDir("blaine-volume-twoinits-", roots);
  const source = join(dir, "vms");
  mkdirSync(source);
  for (const name of ["a", "b"]) mkdirSync(join(dir, name));
  const db = join(dir, "volumes.db");
  const init = (dest: string) => ["volume", "arch-init", "--source", source, "--dest", `internal:${join(dir, dest)}`, "--db", db, "--json"];
  // A stops once its destination's folders are made; B runs whole meanwhile.
  const first = spawnBlaine(init("a"), { env: { BLAINE_STOP_AT: "image-store-folders-made" } });
  await waitFor(() => isStopped(first.pid), 60_000, "the first arch-init to stop");
  const second = await blaine(init("b"));
  first.kill("SIGCONT");
  const [firstExit, firstErr] = await Promise.all([first.exited, new Response(first.stderr).text()]);
  expect(second.exitCode).toBe(0);
  expect({ exitCode: firstExit, refused: firstErr.includes("already holds a volume archive") }).toEqual({ exitCode: 2, refused: true });
  // B's archive is the catalog's, whole.
  const listed = await blaine(["volume", "list", "--db", db, "--json"]);
  expect(listed.exitCode).toBe(0);
  // A's destination holds no archive: another catalog can make one there.
  expect((await blaine(["volume", "arch-init", "--source", source, "--dest", `internal:${join(dir, "a")}`, "--db", join(dir, "other.db")])).exitCode).toBe(0);
});

test("issue 16: delete asks unless -u; list, bad options and a second arch-init name what is wrong", async () => {
  const source = plainSource();
  makeVolume(join(source, "vm1"), 12);
  makeVolume(join(source, "vm2"), 13);
  const env = await newArchive(source);
  await env.ok(["add", "vm1"]);
  await env.ok(["add", "vm2"]);
  await env.ok(["send"]);
  // An option the verb does not take is refused, never passed over: this deleted the whole volume.
  const notTaken = await env.volume(["delete", "vm1", "--session", "20260101-000000", "-u"]);
  expect(notTaken.exitCode).toBe(2);
  expect(notTaken.stderr).toContain("blaine volume delete does not take --session");
  for (const args of [["send", "vm1", "--session", "20260101-000000"], ["list", "--remap"], ["verify", "vm1", "--save-to", "x"]]) {
    expect((await env.volume(args)).exitCode).toBe(2);
  }
  // A key for an archive that is not encrypted is refused, not passed over.
  const keyed = await env.volume(["list", "--keyfile", join(env.dir, "some.key")]);
  expect({ exitCode: keyed.exitCode, said: keyed.stderr.includes("not encrypted") }).toEqual({ exitCode: 2, said: true });
  // Named as typed, not as the parser camel-cases it.
  expect((await env.volume(["list", "--save-too", "x"])).stderr).toContain("`--save-too`");
  const asked = await env.volume(["delete", "vm1"]);
  expect(asked.exitCode).toBe(2);
  expect(asked.stderr).toContain("--unattended");
  expect((await env.ok(["list"])).volumes.map((volume: { name: string }) => volume.name)).toEqual(["vm1", "vm2"]);
  const deleted = await env.ok(["delete", "vm1", "-u"]);
  expect(deleted.sessionsRemoved).toBe(1);
  expect((await env.ok(["list"])).volumes.map((volume: { name: string }) => volume.name)).toEqual(["vm2"]);
  expect(env.chunkFiles()).toEqual(chunksOf([readFileSync(join(source, "vm2"))]));
  expect((await env.volume(["send", "nope"])).stderr).toContain('no volume "nope"');
  expect((await env.volume(["receive", "vm2", "--session", "2026-01-01", "--save-to", "/tmp/x"])).stderr).toContain("--session");
  // An existing target is written over with --force (the message's advice), not without.
  const target = join(env.dir, "vm2.out");
  writeFileSync(target, "old");
  const refused = await env.volume(["receive", "vm2", "--save-to", target]);
  expect({ exitCode: refused.exitCode, said: refused.stderr.includes("--force") }).toEqual({ exitCode: 2, said: true });
  await env.ok(["receive", "vm2", "--save-to", target, "--force"]);
  expect(Buffer.compare(readFileSync(target), readFileSync(join(source, "vm2")))).toBe(0);
  const again = await env.volume(["arch-init", "--source", source, "--dest", env.dest]);
  expect(again.exitCode).toBe(2);
  expect(again.stderr).toContain("already holds a volume archive");
  expect((await env.volume(["arch-init", "--source", source, "--dest", "/no/scheme"], {})).stderr).toContain("internal:/path");
});

describe("monitor and diff", () => {
  const missing = loopFsMissing("btrfs");
  test.skipIf(Boolean(missing))("issue 16: monitor harvests changes into the change map and renews the snapshot; the next send reads the map plus the latest delta; diff lists differing chunks and --remap adds them to the map", async () => {
    const dir = tempDir("blaine-volume-monitor-", roots);
    const loop = mountLoopFs(dir, "btrfs");
    try {
      const source = join(loop.mountpoint, "vms");
      mkdirSync(source);
      const vm = join(source, "vm1");
      makeVolume(vm, 60);
      const env = await newArchive(source);
      await env.ok(["add", "vm1"]);
      // Before any session there is nothing to count changes from.
      expect((await env.ok(["monitor"])).volumes).toEqual([]);
      const expected = new Map<string, Uint8Array>();
      const first = (await env.ok(["send"])).volumes[0];
      expected.set(first.session, readFileSync(vm));
      const snapshot = join(source, ".blaine-volume", "vm1.snap");
      const firstSnapshot = statSync(snapshot).ino;
      writeAt(vm, 4 * CHUNK, randomBytes(CHUNK, 61));
      writeAt(vm, 9 * CHUNK, randomBytes(CHUNK, 62));
      expect((await env.ok(["monitor"])).volumes).toEqual([{ volume: "vm1", newChunks: 2, changedChunks: 2 }]);
      expect(statSync(snapshot).ino).not.toBe(firstSnapshot);
      // Monitoring again with nothing written adds nothing.
      expect((await env.ok(["monitor"])).volumes).toEqual([{ volume: "vm1", newChunks: 0, changedChunks: 2 }]);
      expect((await env.ok(["list"])).volumes[0].changedChunks).toBe(2);
      writeAt(vm, 20 * CHUNK, randomBytes(CHUNK, 63));
      const second = (await env.ok(["send"])).volumes[0];
      expected.set(second.session, readFileSync(vm));
      expect(second).toMatchObject({ method: "extents", bytesRead: 3 * CHUNK });
      expect((await env.ok(["list"])).volumes[0]).toMatchObject({ trackedSince: second.session, changedChunks: 0 });
      // diff: the live volume against the newest session.
      expect((await env.ok(["diff", "vm1"])).differingChunks).toEqual([]);
      writeAt(vm, 30 * CHUNK + 5, randomBytes(10, 64));
      expect((await env.ok(["diff", "vm1"])).differingChunks).toEqual([30]);
      expect((await env.ok(["list"])).volumes[0].changedChunks).toBe(0);
      expect(await env.ok(["diff", "vm1", "--remap"])).toMatchObject({ differingChunks: [30], remapped: true });
      expect((await env.ok(["list"])).volumes[0].changedChunks).toBe(1);
      const third = (await env.ok(["send"])).volumes[0];
      expected.set(third.session, readFileSync(vm));
      expect(third.bytesRead).toBe(CHUNK);
      await expectSessionsEqual(env, "vm1", expected);
    } finally {
      loop.unmount();
    }
  });
});

test("issue 16: arch-deduplicate removes chunks no session references (a killed send's) and arch-delete empties the destination after asking", async () => {
  const source = plainSource();
  const vm = join(source, "vm1");
  makeVolume(vm, 70);
  const env = await newArchive(source);
  await env.ok(["add", "vm1"]);
  await env.ok(["send"]);
  const needed = chunksOf([readFileSync(vm)]);
  // A stray chunk object, as a send killed between storing a chunk and recording it leaves when its claims are lost.
  const stray = hashOf(randomBytes(CHUNK, 71));
  mkdirSync(join(env.storeDir, "chunks", stray.slice(0, 2)), { recursive: true });
  writeFileSync(join(env.storeDir, "chunks", stray.slice(0, 2), stray), "stray");
  expect(env.chunkFiles()).toContain(stray);
  const deduplicated = await env.ok(["arch-deduplicate"]);
  expect(deduplicated.orphansFreed).toBe(1);
  expect(env.chunkFiles()).toEqual(needed);
  expect((await env.volume(["arch-delete"])).exitCode).toBe(2);
  expect(env.chunkFiles()).toEqual(needed);
  const deleted = await env.ok(["arch-delete", "--unattended"]);
  expect(deleted).toMatchObject({ volumes: 1, sessionsRemoved: 1 });
  expect(env.chunkFiles()).toEqual([]);
  expect(existsSync(join(env.storeDir, "meta", "volume-archive.json"))).toBe(false);
  const gone = await env.volume(["list"]);
  expect(gone.exitCode).toBe(2);
  expect(gone.stderr).toContain("holds no volume archive");
});

test("issue 16: arch-delete on a catalog and destination that blaine image backups share deletes the archive's sessions and chunks, never a chunk an image version needs", async () => {
  const { blaine } = await import("./helpers/cli.ts");
  const source = plainSource();
  const vm = join(source, "vm1");
  makeVolume(vm, 72);
  const env = await newArchive(source);
  await env.ok(["add", "vm1"]);
  await env.ok(["send"]);
  // An image backed up into the same catalog and store; half of it is the volume's chunks.
  const disk = join(env.dir, "disk.img");
  writeFileSync(disk, Buffer.concat([readFileSync(vm).subarray(0, 2 * MiB), randomBytes(2 * MiB, 73)]));
  const imageArgs = (args: string[]) => ["image", ...args, "--db", env.db, "--store", env.storeDir, "--json"];
  const backup = await blaine(imageArgs(["backup", disk, "disk", "--block-size", "64K"]));
  expect(backup.exitCode).toBe(0);
  const deleted = await env.ok(["arch-delete", "--unattended"]);
  expect(deleted).toMatchObject({ volumes: 1, sessionsRemoved: 1 });
  expect(env.chunkFiles()).toEqual(chunksOf([readFileSync(disk)]));
  const out = join(env.dir, "disk.out");
  expect((await blaine(imageArgs(["restore", backup.json.uid, out]))).exitCode).toBe(0);
  expect(Buffer.compare(readFileSync(out), readFileSync(disk))).toBe(0);
});

test("issue 16: the catalog from blaine.toml's [volume] table (--config, or ./blaine.toml); an unknown key is named", async () => {
  const source = plainSource();
  makeVolume(join(source, "vm1"), 80);
  const dir = tempDir("blaine-volume-config-", roots);
  mkdirSync(join(dir, "dest"));
  writeFileSync(join(dir, "blaine.toml"), `[volume]\ndb = "volumes.db"\n`);
  const { blaine } = await import("./helpers/cli.ts");
  const init = await blaine(["volume", "arch-init", "--source", source, "--dest", `internal:${join(dir, "dest")}`, "--json"], { cwd: dir });
  expect(init.exitCode).toBe(0);
  expect(existsSync(join(dir, "volumes.db"))).toBe(true);
  expect((await blaine(["volume", "--config", join(dir, "blaine.toml"), "add", "vm1"])).exitCode).toBe(0);
  const listed = await blaine(["volume", "list", "--json"], { cwd: dir });
  expect(listed.json.volumes.map((volume: { name: string }) => volume.name)).toEqual(["vm1"]);
  writeFileSync(join(dir, "bad.toml"), `[volume]\ndatabase = "x.db"\n`);
  const bad = await blaine(["volume", "list", "--config", join(dir, "bad.toml")]);
  expect(bad.exitCode).toBe(2);
  expect(bad.stderr).toContain('unknown key "database" in [volume]');
  const none = await blaine(["volume", "list"], { cwd: source });
  expect(none.exitCode).toBe(2);
  expect(none.stderr).toContain("--db");
});

test.skipIf(!Bun.which("tmux"))("issue 16: delete at a terminal asks, and only \"yes\" deletes", async () => {
  const { Terminal } = await import("./helpers/terminal.ts");
  const source = plainSource();
  makeVolume(join(source, "vm1"), 90);
  const env = await newArchive(source);
  await env.ok(["add", "vm1"]);
  await env.ok(["send"]);
  for (const [answer, code, left] of [["no", 2, ["vm1"]], ["yes", 0, []]] as const) {
    const terminal = new Terminal(env.dir, ["volume", "delete", "vm1", "--db", env.db]);
    try {
      await terminal.answer("Type yes to go on", answer, "Enter");
      expect(await terminal.exitCode()).toBe(code);
    } finally {
      terminal.close();
    }
    expect((await env.ok(["list"])).volumes.map((volume: { name: string }) => volume.name)).toEqual([...left]);
  }
});
