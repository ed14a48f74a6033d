import { setDefaultTimeout, afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync, statfsSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { archiveEnv, type ArchiveEnv } from "./helpers/archive-env.ts";
import { blaine } from "./helpers/cli.ts";
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
