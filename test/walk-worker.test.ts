import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { lstatSync, mkdirSync, readdirSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { comparePaths } from "../lib/catalog/path-order.ts";
import { bytesOfText, textFromBytes } from "../lib/fs/byte-names.ts";
import { DirectoryStats, entryStatOf } from "../lib/fs/entry-stat.ts";
import { mtimeNsecOf } from "../lib/fs/exact-mtime.ts";
import { parseExclude, type ExcludeRule } from "../lib/glob.ts";
import type { FileEntry } from "../lib/archive/stages/types.ts";
import { walk, type WalkOptions } from "../lib/archive/stages/walker.ts";
import { TreeWalk, type WalkRecord } from "../lib/archive/stages/walk-tree.ts";
import { tempDir } from "./helpers/fixture.ts";

setDefaultTimeout(120_000);

const RealWorker = globalThis.Worker;
const dirs: ReturnType<typeof tempDir>[] = [];
afterEach(() => {
  globalThis.Worker = RealWorker;
  for (const dir of dirs.splice(0)) dir.cleanup();
});

/** A temp directory, removed after the test. */
function testDir(): ReturnType<typeof tempDir> {
  const dir = tempDir();
  dirs.push(dir);
  return dir;
}

/** Counts the walk workers started and terminated (walk() looks up the global Worker when it starts one). */
function countWorkers(): { started: number; terminated: number } {
  const counts = { started: 0, terminated: 0 };
  globalThis.Worker = class extends RealWorker {
    constructor(...args: ConstructorParameters<typeof Worker>) {
      super(...args);
      counts.started++;
    }
    override terminate(): void {
      counts.terminated++;
      super.terminate();
    }
  };
  return counts;
}

/** Everything walk() reports, in order: entries, errors and skips in one list. */
async function events(sources: string[], options: WalkOptions = {}): Promise<unknown[]> {
  const seen: unknown[] = [];
  const onError = (path: string, message: string, gone?: boolean) => seen.push(["error", path, message, gone]);
  const onSkip = (path: string, reason: string) => seen.push(["skip", path, reason]);
  for await (const entry of walk(sources, { ...options, onError, onSkip })) seen.push(entry);
  return seen;
}

/** The same, from the shared walk run on this thread: what the worker must deliver. */
function expectedEvents(sources: string[], excludes: readonly ExcludeRule[] = [], skipPaths?: ReadonlySet<string>): unknown[] {
  const tree = new TreeWalk(sources, excludes, skipPaths);
  const records: WalkRecord[] = [];
  // Small takes, so chunk boundaries fall inside directories too.
  while (!tree.done) records.push(...tree.take(7));
  return records.map((record): unknown => {
    switch (record[1]) {
      case 0:
      case 1: {
        const [path, kind, size, mtimeMs, mode, dev, ino, nlink, mtimeNsec, linkTarget] = record;
        return { path, kind: kind === 0 ? "file" : "symlink", size, mtimeMs, mtimeNsec, mode, dev, ino, nlink, linkTarget: linkTarget ?? null } satisfies FileEntry;
      }
      case 2:
        return ["error", record[0], record[2], record[3]];
      case 3:
        return ["skip", record[0], record[2]];
    }
  });
}

/** A tree of `dirs` directories of `files` files each, plus a symlink, a fifo and an excluded directory. */
function makeWideTree(root: string, dirs: number, files: number): void {
  for (let d = 0; d < dirs; d++) {
    const dir = join(root, `d${d}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < files; f++) writeFileSync(join(dir, `f${f}`), `${d}/${f}`);
  }
  mkdirSync(join(root, "cache"));
  writeFileSync(join(root, "cache", "skipped"), "x");
  symlinkSync("d0/f0", join(root, "link"));
  spawnSync("mkfifo", [join(root, "pipe")]);
}

describe("the walk worker", () => {
  test("a tree far larger than the credit window comes out whole, in byte order, with errors and skips in place", async () => {
    const dir = testDir();
    makeWideTree(dir.path, 12, 1500);
    const missing = join(dir.path, "missing");
    const sources = [missing, dir.path, join(dir.path, "d3", "f7")];
    const excludes = [parseExclude("cache/")];
    const skipPaths = new Set([join(dir.path, "d5")]);
    const counts = countWorkers();
    const walked = await events(sources, { excludes, skipPaths });
    expect(walked).toEqual(expectedEvents(sources, excludes, skipPaths));
    expect(walked.length).toBe(1 + 11 * 1500 + 1 + 1 + 1);
    expect(walked[0]).toEqual(["error", missing, expect.any(String), true]);
    expect(walked).toContainEqual(["skip", join(dir.path, "pipe"), "not archived: a fifo"]);
    const paths = walked.slice(1, -1).flatMap((event) => ("path" in (event as object) ? [(event as FileEntry).path] : []));
    expect(paths).toEqual([...paths].sort(comparePaths));
    expect(counts).toEqual({ started: 1, terminated: 1 });
  });

  test("a walk stopped early ends its worker; an aborted one throws the abort's reason and ends it too", async () => {
    const dir = testDir();
    makeWideTree(dir.path, 4, 3000);
    const counts = countWorkers();
    let taken = 0;
    for await (const _ of walk([dir.path])) if (++taken === 10) break;
    expect(counts).toEqual({ started: 1, terminated: 1 });

    const controller = new AbortController();
    const reason = new Error("stop here");
    taken = 0;
    const aborted = (async () => {
      for await (const _ of walk([dir.path], { signal: controller.signal })) if (++taken === 100) controller.abort(reason);
    })();
    await expect(aborted).rejects.toBe(reason);
    expect(taken).toBe(100);
    expect(counts).toEqual({ started: 2, terminated: 2 });
  });

  test("a failure inside the worker that is no path's error surfaces from walk(), not as a hang", async () => {
    const dir = testDir();
    writeFileSync(join(dir.path, "a"), "a");
    // A rule the worker cannot rebuild: its RegExp source does not compile.
    const broken = { ...parseExclude("a"), regexp: { source: "(", flags: "" } as RegExp };
    await expect(events([dir.path], { excludes: [broken] })).rejects.toThrow(/walk worker/);
  });

  test("sources without a directory among them are walked without a worker", async () => {
    const dir = testDir();
    makeWideTree(dir.path, 1, 2);
    const sources = [join(dir.path, "d0", "f1"), join(dir.path, "link"), join(dir.path, "gone")];
    const counts = countWorkers();
    expect(await events(sources)).toEqual(expectedEvents(sources));
    expect(counts.started).toBe(0);
  });

  test("without worker threads, the same walk runs on this thread", async () => {
    const dir = testDir();
    makeWideTree(dir.path, 2, 50);
    const sources = [dir.path, join(dir.path, "nothing")];
    const expected = expectedEvents(sources);
    globalThis.Worker = class {
      constructor() {
        throw new Error("no threads here");
      }
    } as unknown as typeof Worker;
    expect(await events(sources)).toEqual(expected);
  });

  test("the worker keeps a walk alive while it is consumed, and never a process that dropped its walk", () => {
    const dir = testDir();
    makeWideTree(dir.path, 3, 400);
    const walker = join(import.meta.dir, "..", "lib", "archive", "stages", "walker.ts");
    const consume = `import { walk } from ${JSON.stringify(walker)}; let n = 0; for await (const _ of walk([${JSON.stringify(dir.path)}])) n++; console.log(n);`;
    const consumed = spawnSync(process.execPath, ["-e", consume], { encoding: "utf8", timeout: 60_000 });
    // Every file, plus cache/skipped and the symlink (no excludes here).
    expect(consumed.stdout.trim()).toBe(String(3 * 400 + 2));
    // Pulled once, then neither finished nor returned: the process still exits.
    const drop = `import { walk } from ${JSON.stringify(walker)}; const walking = walk([${JSON.stringify(dir.path)}]); console.log((await walking.next()).done);`;
    const dropped = spawnSync(process.execPath, ["-e", drop], { encoding: "utf8", timeout: 60_000 });
    expect(dropped.status).toBe(0);
    expect(dropped.stdout.trim()).toBe("false");
  });
});

describe("entry stats", () => {
  test("fstatat through the directory gives what lstatSync gives, field for field", () => {
    const dir = testDir();
    makeWideTree(dir.path, 2, 20);
    writeFileSync(join(dir.path, "sparse"), "");
    truncateSync(join(dir.path, "sparse"), 5 * 2 ** 32 + 12345); // size above 32 bits
    writeFileSync(join(dir.path, "old"), "1969");
    utimesSync(join(dir.path, "old"), -86_400.25, -86_400.25); // before the epoch
    writeFileSync(join(dir.path, "fraction"), "ns");
    utimesSync(join(dir.path, "fraction"), 1_763_884_556.123457, 1_763_884_556.123457);
    writeFileSync(bytesOfText(join(dir.path, textFromBytes(Buffer.from([0x62, 0xff, 0x21])))), "not UTF-8");
    const stats = new DirectoryStats(dir.path);
    try {
      const names = readdirSync(dir.path, { encoding: "buffer" }).map(textFromBytes);
      expect(names.length).toBe(9);
      for (const name of names) expect([name, stats.statEntry(name)]).toEqual([name, entryStatOf(lstatSync(bytesOfText(join(dir.path, name))), mtimeNsecOf(lstatSync(bytesOfText(join(dir.path, name)), { bigint: true })))]);
      expect(() => stats.statEntry("vanished")).toThrow(/ENOENT/);
    } finally {
      stats.close();
    }
  });
});
