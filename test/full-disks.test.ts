import { setDefaultTimeout, afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync, statfsSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { archiveEnv, type ArchiveEnv } from "./helpers/archive-env.ts";
import { spawnBlaine, waitFor } from "./helpers/cli.ts";
import type { TreeSpec } from "./helpers/fixture.ts";
import { canMount, mountTmpfs } from "./helpers/mounts.ts";

// Real runs over thousands of files on real size-limited tmpfs disks.
setDefaultTimeout(240_000);

const mountable = canMount();
if (!mountable) console.log("skipped full-disk tests: they need root and permission to mount a size-limited tmpfs");

let env: ArchiveEnv | undefined;
const cleanups: (() => void)[] = [];
afterEach(() => {
  env?.cleanup();
  env = undefined;
  while (cleanups.length) cleanups.pop()!();
});

/** `count` small files (200 B to 3 KB) in directories of 200: far more files than a small disk's blocks hold. */
function smallFiles(count: number): TreeSpec {
  const tree: TreeSpec = {};
  for (let i = 0; i < count; i++) {
    const dir = `d${String(Math.floor(i / 200)).padStart(2, "0")}`;
    const files = (tree[dir] ??= {}) as TreeSpec;
    files[`f${String(i).padStart(5, "0")}.txt`] = { bytes: 200 + ((i * 397) % 2800), seed: i + 1 };
  }
  return tree;
}

/** A tmpfs disk of `size` for one test, unmounted afterwards. */
function tmpfsDisk(name: string, size: string): string {
  const dir = join("/tmp", `blaine-${name}-${process.pid}-${Date.now()}`);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(mountTmpfs(dir, size));
  return dir;
}

/** Fills what is left of the file system at `path`'s directory with that one file, as another program would. */
function fillUp(path: string): string {
  const dir = dirname(path);
  const fd = openSync(path, "a");
  const chunk = new Uint8Array(64 * 1024).fill(7);
  try {
    for (;;) {
      try {
        writeSync(fd, chunk);
      } catch (error) {
        if ((error as { code?: string }).code !== "ENOSPC") throw error;
        const stats = statfsSync(dir);
        if (stats.bavail === 0) break;
        // Less than a chunk left: fill it byte-block by block.
        writeSync(fd, chunk.subarray(0, Math.min(chunk.length, Number(stats.bavail * stats.bsize))));
      }
    }
  } finally {
    closeSync(fd);
  }
  return path;
}

/** The disk catalog's entries and recorded parity sets, read directly. */
function diskCatalog(disk: string): { entries: number; paritySets: number } {
  const db = new Database(join(disk, ".blaine", "catalog.db"), { readonly: true });
  try {
    const entries = (db.query("SELECT count(*) AS n FROM entries").get() as { n: number }).n;
    const paritySets = (db.query("SELECT count(*) AS n FROM parity_sets").get() as { n: number }).n;
    return { entries, paritySets };
  } finally {
    db.close();
  }
}

/** Every file under the disk's parity store (set files and any temp of a set write). */
function parityFiles(disk: string): string[] {
  const dir = join(disk, ".blaine", "parity");
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

/** No crash output: no SQLite "disk is full", no ENOSPC, no stack trace (the first of them shown, not all of it). */
function expectNoCrash(stderr: string) {
  const crash = /database or disk is full|ENOSPC|\n\s+at .*\.ts:\d+/.exec(stderr);
  expect(crash ? stderr.slice(Math.max(0, crash.index - 300), crash.index + 300) : "").toBe("");
}

/** The run ended as a full disk should end it: exit 3, its summary, no crash output, nothing left in tmp. */
function expectCleanFullStop(run: { exitCode: number; stderr: string; json: any }, disk: string, total: number) {
  expectNoCrash(run.stderr);
  expect(run.exitCode).toBe(3);
  expect(run.json).toBeDefined();
  expect(run.json.errors).toEqual([]);
  expect(run.json.notStored.files).toBeGreaterThan(0);
  expect(run.json.new + run.json.notStored.files).toBe(total);
  expect(run.stderr).toMatch(/A new disk is needed/);
  expect(readdirSync(join(disk, ".blaine", "tmp"))).toEqual([]);
}

/** Restored files equal their sources, for every file the catalog says is archived. */
async function expectArchivedRestore(e: ArchiveEnv, archived: number) {
  const to = join(e.root, `restored-${Date.now()}`);
  const restored = await e.restore(to);
  expectNoCrash(restored.stderr);
  expect(restored.exitCode).toBe(0);
  expect(restored.json.restored).toBe(archived);
  let compared = 0;
  for (const dir of readdirSync(join(to, e.source))) {
    for (const name of readdirSync(join(to, e.source, dir))) {
      expect(readFileSync(join(to, e.source, dir, name))).toEqual(readFileSync(join(e.source, dir, name)));
      compared++;
    }
  }
  expect(compared).toBe(archived);
  rmSync(to, { recursive: true, force: true });
}

describe("a disk filled by many small files", () => {
  test.skipIf(!mountable).each([
    ["parity off", ["--parity", "off", "--reserve", "0"]],
    ["parity on", ["--reserve", "0"]],
    ["parity on, default reserve", []],
  ])(
    "issue 12.3: 8 000 small files on a 20 MB disk (%s): exit 3 with a summary, no temps or unrecorded parity, and every command works on the full disk",
    async (_label, flags) => {
      const disk = tmpfsDisk("small-files", "20m");
      env = await archiveEnv(smallFiles(8000), { disk });
      const run = await env.run(...flags);
      expectCleanFullStop(run, disk, 8000);
      const stored = diskCatalog(disk);
      expect(stored.entries).toBe(run.json.new);
      // Parity: two files (index and vol) per recorded set, nothing unrecorded, no temps of set writes.
      const withParity = !flags.includes("off");
      expect(parityFiles(disk).length).toBe(2 * stored.paritySets);
      if (withParity) expect(stored.paritySets).toBe(run.json.new);

      // The disk is now as full as Blaine lets it get; fill the rest too (out of verify's way: it would report the file).
      fillUp(join(disk, ".blaine", "filler.bin"));
      expect(statfsSync(disk).bavail).toBe(0);
      const verified = await env.verify();
      expectNoCrash(verified.stderr);
      expect(verified.exitCode).toBe(0);
      expect(verified.json.disks[0].files).toBe(stored.entries);
      await expectArchivedRestore(env, stored.entries);
      const listed = await env.cli("ls", "--json");
      expect(listed.exitCode).toBe(0);
      const again = await env.run(...flags);
      expectCleanFullStop(again, disk, 8000 - run.json.new);
      expect(again.json.unchanged).toBe(run.json.new);
      expect(diskCatalog(disk).entries).toBe(stored.entries);
    },
  );
});

/** Whether process `pid` is stopped (SIGSTOP): its state in /proc is T. */
function isStopped(pid: number): boolean {
  try {
    return /^\d+ \(.*\) T /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** Starts a run that stops itself at `point` (BLAINE_STOP_AT), and waits until it has. */
async function runStoppedAt(e: ArchiveEnv, point: string, ...flags: string[]) {
  const child = spawnBlaine(["run", "--db", e.db, "--dest", e.disk, "--json", ...flags, e.source], { env: { BLAINE_STOP_AT: point } });
  const output = Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  await waitFor(() => isStopped(child.pid) || child.exitCode !== null, 120_000, `the run to stop at ${point}`);
  expect(child.exitCode).toBeNull();
  return {
    child,
    finished: async () => {
      const [stdout, stderr, exitCode] = await output;
      let json: any;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      return { exitCode, stdout, stderr, json };
    },
  };
}

/** The disk agrees with its catalogs: nothing missing, corrupt or mismatched, nothing unexpected but `outside` files. */
async function expectNothingHalfRecorded(e: ArchiveEnv, outside: readonly string[] = []) {
  const verified = await e.verify();
  expectNoCrash(verified.stderr);
  const disk = verified.json.disks[0];
  expect({ missing: disk.missing, corrupt: disk.corrupt, catalogMismatch: disk.catalogMismatch }).toEqual({ missing: [], corrupt: [], catalogMismatch: [] });
  expect(disk.unexpected.filter((path: string) => !outside.some((name) => path.endsWith(name)))).toEqual([]);
  expect(verified.json.parity.damagedSets).toEqual([]);
  expect(verified.exitCode).toBe(outside.length > 0 ? 4 : 0);
  expect(readdirSync(join(e.disk, ".blaine", "tmp"))).toEqual([]);
}

/** Once the room is back, a run stores everything and a restore equals the source. */
async function expectWholeOnceThereIsRoom(e: ArchiveEnv, total: number) {
  const again = await e.run();
  expectNoCrash(again.stderr);
  expect(again.exitCode).toBe(0);
  expect(again.json.new + again.json.unchanged).toBe(total);
  await expectNothingHalfRecorded(e);
  await expectArchivedRestore(e, total);
}

describe("a disk filled from outside during a run", () => {
  test.skipIf(!mountable).each([
    ["while files are copied", "after-copy:300"],
    ["after a batch's intents, before its placements", "after-intents:1"],
    ["after the placements, before the catalogs record them", "before-commit:1"],
  ])(
    "issue 12.4: filled %s: exit 3 saying so, no crash output, nothing half-recorded; once there is room the next run stores the rest",
    async (_label, point) => {
      const disk = tmpfsDisk("outside", "64m");
      env = await archiveEnv(smallFiles(2500), { disk });
      const run = await runStoppedAt(env, point);
      // Another program takes every free block while the run is stopped.
      const filler = fillUp(join(disk, "filler.bin"));
      run.child.kill("SIGCONT");
      const ended = await run.finished();
      expectNoCrash(ended.stderr);
      expect(ended.exitCode).toBe(3);
      expect(ended.json.errors).toEqual([]);
      expect(ended.json.notStored.files).toBeGreaterThan(0);
      expect(ended.stderr).toMatch(/disk "A" .*(ran out of space|is full)/);
      // What a commit made on the disk but could not record is recorded at the run's end ("recovered") once there is room.
      expect(diskCatalog(disk).entries).toBe(ended.json.new + ended.json.recovered);
      await expectNothingHalfRecorded(env, ["filler.bin"]);
      rmSync(filler);
      await expectWholeOnceThereIsRoom(env, 2500);
    },
  );

  test.skipIf(!mountable)("issue 12.4: a kill -9 while the disk is full: verify, restore and run work on the full disk; nothing is lost once there is room", async () => {
    const disk = tmpfsDisk("killed-full", "64m");
    env = await archiveEnv(smallFiles(2500), { disk });
    // Stopped with a batch placed but not recorded: the disk fills, and the run is killed there.
    const run = await runStoppedAt(env, "before-commit:1");
    const filler = fillUp(join(disk, "filler.bin"));
    run.child.kill("SIGKILL");
    await run.finished();
    // On the full disk: verify settles what the kill left (the killed run's room is freed for it) and finds it whole.
    await expectNothingHalfRecorded(env, ["filler.bin"]);
    // Settling freed the killed run's temps (its kept room too): the other program takes that as well.
    fillUp(filler);
    const stored = diskCatalog(disk).entries;
    expect(stored).toBeGreaterThan(0);
    await expectArchivedRestore(env, stored);
    const full = await env.run();
    expectNoCrash(full.stderr);
    expect(full.exitCode).toBe(3);
    expect(full.json.unchanged).toBe(stored);
    expect(readdirSync(join(disk, ".blaine", "tmp"))).toEqual([]);
    rmSync(filler);
    await expectWholeOnceThereIsRoom(env, 2500);
  });
});

/** `count` files of `bytes` each at the source's top. */
function sameSizeFiles(count: number, bytes: number): TreeSpec {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`f${String(i).padStart(4, "0")}`, { bytes, seed: i + 1 }]));
}

async function diskRow(e: ArchiveEnv): Promise<{ label: string; state: string; capacity: number | null; used: number }> {
  const listed = await e.cli("disk", "list", "--json");
  expect(listed.exitCode).toBe(0);
  return listed.json.disks[0];
}

describe("capacity and full disks", () => {
  test("issue 11.10: run --capacity is kept; the disk it fills is marked full and the next run without the flag does not overfill it; a larger capacity opens it again", async () => {
    env = await archiveEnv(sameSizeFiles(10, 100_000));
    const first = await env.run("--capacity", "450K");
    expect(first.exitCode).toBe(3);
    expect(first.json.new).toBe(4);
    expect(first.json.filledUp).toEqual(["A"]);
    expect(await diskRow(env)).toMatchObject({ label: "A", state: "full", capacity: 450 * 1024 });
    // No flag this time: the capacity given once still holds.
    const next = await env.run();
    expect(next.exitCode).toBe(3);
    expect(next.json.new).toBe(0);
    expect((await diskRow(env)).used).toBeLessThanOrEqual(450 * 1024);
    const larger = await env.run("--capacity", "2M");
    expect(larger.exitCode).toBe(0);
    expect(larger.json.new).toBe(6);
    expect(await diskRow(env)).toMatchObject({ state: "open", capacity: 2 * 1024 * 1024 });
  });

  test.skipIf(!mountable)("issue 11.10: a disk that fills up in a run without another disk to span onto is marked full", async () => {
    const disk = tmpfsDisk("marked-full", "3m");
    env = await archiveEnv(sameSizeFiles(12, 400_000), { disk });
    const run = await env.run("--reserve", "0");
    expect(run.exitCode).toBe(3);
    expect(run.json.filledUp).toEqual(["A"]);
    expect(run.stdout + run.stderr).toMatch(/Disk "A" is full \(marked so\)/);
    expect((await diskRow(env)).state).toBe("full");
    const again = await env.run("--reserve", "0");
    expect(again.exitCode).toBe(3);
    expect(again.json.new).toBe(0);
    expect(again.json.warnings.map((w: { message: string }) => w.message).join("\n")).toMatch(/every mounted disk is full/);
  });
});
