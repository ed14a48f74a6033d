import { setDefaultTimeout, afterEach, describe, expect, test } from "bun:test";
import { chmodSync, lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CopyPool } from "../lib/copy/copy-pool.ts";
import { removeData } from "../lib/archive/disk/disk-writer.ts";
import { DataTreeDirs } from "../lib/fs/data-tree-dirs.ts";
import { placeFile } from "../lib/fs/place-file.ts";
import { archiveEnv, type ArchiveEnv } from "./helpers/archive-env.ts";
import { blaine } from "./helpers/cli.ts";
import { blaineKilledAt } from "./helpers/crash.ts";
import { filesOf, makeTree, seededBytes, snapshotTree, tempDir } from "./helpers/fixture.ts";
import { diffTrees, diskContents, multiDiskEnv, type MultiDiskEnv } from "./helpers/multi-disk-env.ts";

// These tests run the real CLI several times each: Bun's 5 s default is too short.
setDefaultTimeout(120_000);

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

async function env(spec: Parameters<typeof archiveEnv>[0]): Promise<ArchiveEnv> {
  const made = await archiveEnv(spec);
  cleanups.push(made.cleanup);
  return made;
}

/** A directory outside every disk (standing for /srv/elsewhere or /etc), and a snapshot of it to compare with. */
function elsewhere(): { path: string; before: ReturnType<typeof snapshotTree> } {
  const dir = tempDir("blaine-elsewhere-");
  cleanups.push(dir.cleanup);
  makeTree(dir.path, { victim: "outside, not Blaine's", sub: { deeper: "also outside" } });
  return { path: dir.path, before: snapshotTree(dir.path) };
}

/** The restored tree equals the source byte for byte, and verify is clean. */
async function expectRestoreEqualsSource(e: ArchiveEnv): Promise<void> {
  const to = join(e.root, `restore-${Date.now()}`);
  const restored = await e.restore(to);
  expect(restored.json.errors).toEqual([]);
  expect(restored.json.damaged).toEqual([]);
  expect(restored.exitCode).toBe(0);
  expect(filesOf(snapshotTree(join(to, e.source)))).toEqual(filesOf(snapshotTree(e.source)));
  const verified = await e.verify();
  expect(verified.exitCode).toBe(0);
}

/** Replaces the source symlink `name` by a real directory holding `files`. */
function symlinkBecomesDirectory(e: { source: string }, name: string, files: Record<string, string | Uint8Array>): void {
  unlinkSync(join(e.source, name));
  mkdirSync(join(e.source, name, "sub"), { recursive: true });
  for (const [file, content] of Object.entries(files)) writeFileSync(join(e.source, name, file), content);
}

describe("issue 12.1: no write on an archive disk follows a symlink", () => {
  test("issue 12.1: a source symlink to a directory outside the disk, replaced by a directory, never writes outside the disk", async () => {
    const outside = elsewhere();
    const e = await env({ esc2: { symlink: outside.path }, keep: "kept" });
    expect((await e.run()).exitCode).toBe(0);
    expect(lstatSync(e.onDisk("esc2")).isSymbolicLink()).toBe(true);

    symlinkBecomesDirectory(e, "esc2", { victim: "archived victim", "sub/deeper": "archived deeper" });
    const second = await e.run();
    expect(second.json.errors).toEqual([]);
    expect(second.exitCode).toBe(0);
    expect(second.json.new).toBe(2);
    expect(second.json.deleted).toBe(1);
    // Nothing outside the disk changed, byte for byte.
    expect(snapshotTree(outside.path)).toEqual(outside.before);
    // The disk holds a real directory with the archived files in it.
    expect(lstatSync(e.onDisk("esc2")).isDirectory()).toBe(true);
    expect(readFileSync(e.onDisk("esc2/victim"), "utf8")).toBe("archived victim");
    expect(readFileSync(e.onDisk("esc2/sub/deeper"), "utf8")).toBe("archived deeper");
    const { onFileSystem, inCatalog } = diskContents(e.disk);
    expect(onFileSystem).toEqual(inCatalog);

    const third = await e.run();
    expect(third.json.unchanged).toBe(3);
    expect(third.json.new).toBe(0);
    await expectRestoreEqualsSource(e);
    expect(snapshotTree(outside.path)).toEqual(outside.before);
  });

  test("issue 12.1: a relative dirlink → real replaced by a directory leaves the archived real/movie.mkv intact", async () => {
    const e = await env({ real: { "movie.mkv": { bytes: 200_000, seed: 1 } }, dirlink: { symlink: "real" } });
    expect((await e.run()).exitCode).toBe(0);

    // Same name, same size, other content: written through the old link it would overwrite the archived movie.
    symlinkBecomesDirectory(e, "dirlink", { "movie.mkv": seededBytes(200_000, 2) });
    const second = await e.run();
    expect(second.json.errors).toEqual([]);
    expect(second.exitCode).toBe(0);
    expect(Buffer.from(readFileSync(e.onDisk("real/movie.mkv"))).equals(Buffer.from(seededBytes(200_000, 1)))).toBe(true);
    expect(Buffer.from(readFileSync(e.onDisk("dirlink/movie.mkv"))).equals(Buffer.from(seededBytes(200_000, 2)))).toBe(true);
    expect(lstatSync(e.onDisk("dirlink")).isDirectory()).toBe(true);
    const { onFileSystem, inCatalog } = diskContents(e.disk);
    expect(onFileSystem).toEqual(inCatalog);
    await expectRestoreEqualsSource(e);
  });

  test("issue 12.1: a twin away while the symlink became a directory catches up without writing outside the disk", async () => {
    const outside = elsewhere();
    const m: MultiDiskEnv = await multiDiskEnv({ esc2: { symlink: outside.path }, keep: "kept" });
    cleanups.push(m.cleanup);
    const C = await m.initDisk("C", 16_000_000);
    expect((await m.run([C])).exitCode).toBe(0);
    const C2 = m.diskDir("C2", 16_000_000);
    expect((await m.cli(["disk", "clone", "C", C2, "--json"], [C])).exitCode).toBe(0);
    expect(lstatSync(m.onDisk(C2, "esc2")).isSymbolicLink()).toBe(true);

    // C′ is away while the change is archived on C; it is applied to C′ when C′ comes back alone.
    symlinkBecomesDirectory(m, "esc2", { victim: "archived victim", "sub/deeper": "archived deeper" });
    const onC = await m.run([C]);
    expect(onC.json.errors).toEqual([]);
    expect(onC.exitCode).toBe(0);
    expect(snapshotTree(outside.path)).toEqual(outside.before);
    const back = await m.run([C2]);
    expect(back.json.errors).toEqual([]);
    expect(back.exitCode).toBe(0);
    expect(snapshotTree(outside.path)).toEqual(outside.before);
    expect(lstatSync(m.onDisk(C2, "esc2")).isDirectory()).toBe(true);
    expect(readFileSync(m.onDisk(C2, "esc2/victim"), "utf8")).toBe("archived victim");
    expect(diffTrees(C, C2)).toBe("");
    for (const copy of [C, C2]) {
      const { onFileSystem, inCatalog } = diskContents(copy);
      expect(onFileSystem).toEqual(inCatalog);
    }
    expect((await m.cli(["pending", "--json"])).json.actions).toEqual([]);
    expect((await m.cli(["verify", "--json"], [C, C2])).exitCode).toBe(0);
    const to = join(m.root, "restored");
    const restored = await m.cli(["restore", m.source, "--to", to, "--json"], [C2]);
    expect(restored.exitCode).toBe(0);
    expect(filesOf(snapshotTree(join(to, m.source)))).toEqual(filesOf(snapshotTree(m.source)));
  });

  test("issue 12.1: a run killed while the symlink is replaced recovers without writing outside the disk", async () => {
    const outside = elsewhere();
    const e = await env({ esc2: { symlink: outside.path }, keep: "kept" });
    expect((await e.run()).exitCode).toBe(0);
    symlinkBecomesDirectory(e, "esc2", { victim: "archived victim", "sub/deeper": "archived deeper" });
    for (const point of ["mid-placement:1", "before-commit:1"]) {
      await blaineKilledAt(point, ["run", "--db", e.db, "--dest", e.disk, e.source]);
      expect(snapshotTree(outside.path)).toEqual(outside.before);
    }
    const after = await e.run();
    expect(after.json.errors).toEqual([]);
    expect(after.exitCode).toBe(0);
    expect(snapshotTree(outside.path)).toEqual(outside.before);
    const { onFileSystem, inCatalog } = diskContents(e.disk);
    expect(onFileSystem).toEqual(inCatalog);
    await expectRestoreEqualsSource(e);
  });

  test("issue 12.1: placing (here and on a copy worker), removing and pruning below a stray symlink on the disk never touch what it points at", async () => {
    const outside = elsewhere();
    const dir = tempDir();
    cleanups.push(dir.cleanup);
    const root = join(dir.path, "disk");
    mkdirSync(join(root, ".blaine", "tmp"), { recursive: true });
    const temp = (name: string) => {
      const path = join(root, ".blaine", "tmp", name);
      writeFileSync(path, `archived ${name}`);
      return path;
    };
    for (const name of ["a", "b", "c"]) symlinkSync(outside.path, join(root, name));
    symlinkSync("a", join(root, "relative"));

    placeFile(temp("t1"), join(root, "a", "victim"), new DataTreeDirs(root));
    expect(lstatSync(join(root, "a")).isDirectory()).toBe(true);
    expect(readFileSync(join(root, "a", "victim"), "utf8")).toBe("archived t1");
    placeFile(temp("t2"), join(root, "relative", "sub", "deeper"), new DataTreeDirs(root));
    expect(readFileSync(join(root, "relative", "sub", "deeper"), "utf8")).toBe("archived t2");

    removeData(root, "/b/victim", new DataTreeDirs(root));
    removeData(root, "/b/sub/deeper", new DataTreeDirs(root));
    expect(lstatSync(join(root, "b")).isSymbolicLink()).toBe(true);

    const pool = new CopyPool(1);
    try {
      const failures = await pool.placeAll(root, [{ temp: temp("t3"), target: join(root, "c", "victim") }]);
      expect(failures).toEqual([undefined]);
    } finally {
      pool.close();
    }
    expect(readFileSync(join(root, "c", "victim"), "utf8")).toBe("archived t3");

    // A file in the way is no directory to write into: refused, naming it.
    writeFileSync(join(root, "file"), "a file");
    expect(() => placeFile(temp("t4"), join(root, "file", "x"), new DataTreeDirs(root))).toThrow(`${join(root, "file")} on the disk is a file`);
    expect(snapshotTree(outside.path)).toEqual(outside.before);
  });

  test("issue 12.1: verify --repair never repairs through a symlink that took a directory's place on the disk", async () => {
    const e = await env({ real: { "movie.mkv": { bytes: 100_000, seed: 3 } } });
    expect((await e.run()).exitCode).toBe(0);
    // Someone moved the directory off the disk and left a symlink: the damaged copy lies outside.
    const outside = tempDir("blaine-elsewhere-");
    cleanups.push(outside.cleanup);
    const damaged = Buffer.from(seededBytes(100_000, 3));
    damaged[5000] ^= 0xff;
    writeFileSync(join(outside.path, "movie.mkv"), damaged);
    const before = snapshotTree(outside.path);
    Bun.spawnSync(["rm", "-r", e.onDisk("real")]);
    symlinkSync(outside.path, e.onDisk("real"));

    const movie = join(e.source, "real", "movie.mkv");
    // What lies where the symlink points is not on the disk: missing, not "corrupt" (which parity would repair in place).
    const verified = await e.cli("verify", "--json");
    expect(verified.exitCode).not.toBe(0);
    expect(verified.json.disks[0].missing).toEqual([movie]);
    // Copied again from the source, below a real directory that replaced the symlink.
    const repaired = await e.cli("verify", "--repair", "--json");
    expect(repaired.json.disks[0].missing).toEqual([]);
    expect(repaired.json.disks[0].recopied).toEqual([movie]);
    expect(snapshotTree(outside.path)).toEqual(before);
    expect(lstatSync(e.onDisk("real")).isDirectory()).toBe(true);
    expect(Buffer.from(readFileSync(e.onDisk("real/movie.mkv"))).equals(Buffer.from(seededBytes(100_000, 3)))).toBe(true);
  });
});

describe("issue 12.11: hardlinks on the disk only where the disk copies show the same metadata", () => {
  /** Each file's mtime (to the nanosecond) and mode as `stat` shows them, by name. */
  const metadataOf = (dir: string, names: readonly string[]) =>
    Object.fromEntries(
      names.map((name) => {
        const stats = statSync(join(dir, name), { bigint: true });
        return [name, { mtimeNs: stats.mtimeNs.toString(), mode: Number(stats.mode & 0o7777n) }];
      }),
    );
  const inodeOf = (path: string) => statSync(path).ino;

  test("issue 12.11: duplicates with other mtimes or modes are copies of their own, so the disk read with cp -a shows each file's own metadata", async () => {
    const names = ["a", "same", "older", "private", "big-a", "big-older"];
    const e = await env({
      a: "duplicate content",
      same: "duplicate content",
      older: "duplicate content",
      private: "duplicate content",
      "big-a": { bytes: 1_500_000, seed: 7 },
    });
    const day = new Date(Date.now() - 86_400_000);
    const now = statSync(join(e.source, "a")).mtime;
    for (const name of ["a", "same", "private"]) utimesSync(join(e.source, name), now, now);
    utimesSync(join(e.source, "older"), day, day);
    chmodSync(join(e.source, "private"), 0o600);
    const first = await e.run();
    expect(first.exitCode).toBe(0);
    // Same content, same mtime and mode: one inode (dedup stays).
    expect(first.json.deduplicated).toBe(1);
    expect(inodeOf(e.onDisk("same"))).toBe(inodeOf(e.onDisk("a")));
    expect(inodeOf(e.onDisk("older"))).not.toBe(inodeOf(e.onDisk("a")));
    expect(inodeOf(e.onDisk("private"))).not.toBe(inodeOf(e.onDisk("a")));

    // A large duplicate of archived content (found before copying) with another mtime: copied too.
    writeFileSync(join(e.source, "big-older"), seededBytes(1_500_000, 7));
    utimesSync(join(e.source, "big-older"), day, day);
    const second = await e.run();
    expect(second.exitCode).toBe(0);
    expect(second.json.new).toBe(1);
    expect(second.json.deduplicated).toBe(0);
    expect(second.json.bytesCopied).toBe(1_500_000);
    expect(inodeOf(e.onDisk("big-older"))).not.toBe(inodeOf(e.onDisk("big-a")));

    // The disk is a plain mirror: each file shows its source's mtime and mode, also through cp -a.
    expect(metadataOf(e.onDisk(), names)).toEqual(metadataOf(e.source, names));
    const copied = join(e.root, "copied-out");
    expect(Bun.spawnSync(["cp", "-a", e.onDisk(), copied]).exitCode).toBe(0);
    expect(metadataOf(copied, names)).toEqual(metadataOf(e.source, names));
    await expectRestoreEqualsSource(e);
  });

  test("issue 12.11: a file touched without a change of content gets its new mtime on the disk, and its old hardlinks keep theirs", async () => {
    const e = await env({ a: "shared content", b: "shared content" });
    const then = new Date(Date.now() - 3_600_000);
    for (const name of ["a", "b"]) utimesSync(join(e.source, name), then, then);
    expect((await e.run()).exitCode).toBe(0);
    expect(inodeOf(e.onDisk("b"))).toBe(inodeOf(e.onDisk("a")));
    const later = new Date(Date.now() - 60_000);
    utimesSync(join(e.source, "a"), later, later);
    const second = await e.run();
    expect(second.exitCode).toBe(0);
    expect(second.json.modified).toBe(1);
    expect(metadataOf(e.onDisk(), ["a", "b"])).toEqual(metadataOf(e.source, ["a", "b"]));
    await expectRestoreEqualsSource(e);
  });
});

describe("issue 12.8: sources and archive disks never contain each other", () => {
  /** The archived paths below `dir` (blaine ls). */
  async function archivedUnder(e: ArchiveEnv, dir: string): Promise<string[]> {
    const listed = await e.cli("ls", "--json");
    return listed.json.files.map((row: { path: string }) => row.path).filter((path: string) => path === dir || path.startsWith(`${dir}/`));
  }

  test("issue 12.8: a source that is an archive disk, or inside one, is refused with exit 2 naming the source and the disk", async () => {
    const e = await env({ a: "x" });
    expect((await e.run()).exitCode).toBe(0);
    const before = snapshotTree(e.disk);
    mkdirSync(join(e.disk, "inside"));
    for (const source of [e.disk, join(e.disk, "inside")]) {
      const refused = await blaine(["run", "--db", e.db, "--dest", e.disk, source]);
      expect(refused.exitCode).toBe(2);
      expect(refused.stderr).toContain(source);
      expect(refused.stderr).toContain(`disk "A"`);
    }
    // A disk of this archive that is not mounted for the run is refused all the same.
    const other = join(e.root, "B");
    expect((await blaine(["disk", "init", other, "--label", "B", "--db", e.db])).exitCode).toBe(0);
    const refused = await blaine(["run", "--db", e.db, "--dest", e.disk, other]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain(`disk "B"`);
    Bun.spawnSync(["rmdir", join(e.disk, "inside")]);
    expect(snapshotTree(e.disk, { skip: (path) => path.startsWith(".blaine") })).toEqual(
      Object.fromEntries(Object.entries(before).filter(([path]) => !path.startsWith(".blaine"))),
    );
  });

  test("issue 12.8: an archive disk of this archive inside a source is skipped with a warning naming its label; another archive's catalogs too", async () => {
    const e = await env({ media: { "film.mkv": "film" } });
    // A second disk of this archive, kept in the source tree (not given as --dest).
    const inside = join(e.source, "spare-disk");
    expect((await blaine(["disk", "init", inside, "--label", "B", "--db", e.db])).exitCode).toBe(0);
    // A disk of another archive in the source tree, holding data of its own.
    const foreignSource = join(e.root, "foreign-src");
    makeTree(foreignSource, { "notes.txt": "foreign notes" });
    const foreign = join(e.source, "foreign-disk");
    const foreignDb = join(e.root, "foreign.db");
    expect((await blaine(["disk", "init", foreign, "--label", "X", "--db", foreignDb])).exitCode).toBe(0);
    expect((await blaine(["run", "--db", foreignDb, "--dest", foreign, foreignSource])).exitCode).toBe(0);

    const counts: number[] = [];
    for (let round = 0; round < 3; round++) {
      const run = await e.run();
      expect(run.json.errors).toEqual([]);
      expect(run.exitCode).toBe(0);
      const warnings = run.json.warnings.map((warning: { path: string; message: string }) => `${warning.path}: ${warning.message}`).join("\n");
      expect(warnings).toContain(`${inside}: `);
      expect(warnings).toContain(`disk "B"`);
      expect(warnings).toContain(`${join(foreign, ".blaine")}: `);
      expect(warnings).toContain(`disk "X"`);
      counts.push(diskContents(e.disk).inCatalog.length);
    }
    // The archive does not grow run after run, and holds nothing of Blaine's own files.
    expect(new Set(counts).size).toBe(1);
    expect(await archivedUnder(e, inside)).toEqual([]);
    expect(await archivedUnder(e, join(foreign, ".blaine"))).toEqual([]);
    // The other archive's data tree is ordinary data here.
    expect(await archivedUnder(e, foreign)).toEqual([join(foreign, foreignSource, "notes.txt")]);
    expect(await archivedUnder(e, join(e.source, "media"))).toEqual([join(e.source, "media", "film.mkv")]);
  });
});
