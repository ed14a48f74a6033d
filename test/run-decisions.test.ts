import { setDefaultTimeout, afterEach, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, linkSync, lstatSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import { archiveEnv, type ArchiveEnv } from "./helpers/archive-env.ts";
import { filesOf, seededBytes, snapshotTree, tempDir } from "./helpers/fixture.ts";
import { canMount, mountTmpfs } from "./helpers/mounts.ts";

// The real CLI on real trees and real small disks: Bun's 5 s default is too short.
setDefaultTimeout(120_000);

let env: ArchiveEnv | undefined;
const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
  env?.cleanup();
  env = undefined;
});

const rootless = canMount() ? undefined : "needs root and mount permission for a size-limited tmpfs";
if (rootless) console.log(`skipped full-disk tests on tmpfs: ${rootless}; the --capacity variants cover the logic`);

/** A disk for the test: a size-limited tmpfs when this process can mount, else a plain directory. */
function smallDisk(size: string): string | undefined {
  if (rootless) return undefined;
  const dir = tempDir("blaine-small-disk-");
  const unmount = mountTmpfs(dir.path, size);
  cleanups.push(() => {
    unmount();
    dir.cleanup();
  });
  return dir.path;
}

/** Restores everything and compares it with the source. */
async function expectRestoreEqualsSource(archive: ArchiveEnv): Promise<void> {
  const to = join(archive.root, `restored-${Date.now()}`);
  const restored = await archive.restore(to);
  expect(restored.exitCode).toBe(0);
  expect(filesOf(snapshotTree(join(to, archive.source)))).toEqual(filesOf(snapshotTree(archive.source)));
}

describe("issue 11.2: a rename on a nearly full disk", () => {
  // The disk holds the file and a filler; less is free than the file's size.
  const tree = { X: { "movie.mkv": { bytes: 600_000, seed: 1 } }, filler: { bytes: 700_000, seed: 2 } };

  async function renameOnFullDisk(spaceArgs: string[], disk?: string): Promise<void> {
    env = await archiveEnv(tree, disk ? { disk } : {});
    const first = await env.run("--match", "path-size-mtime", ...spaceArgs);
    expect(first.exitCode).toBe(0);
    renameSync(join(env.source, "X"), join(env.source, "Y"));
    const run = await env.run("--match", "path-size-mtime", ...spaceArgs);
    expect(run.json.warnings).toEqual([]);
    expect(run.exitCode).toBe(0);
    expect(run.json).toMatchObject({ renamed: 1, deleted: 0, bytesCopied: 0 });
    const where = await env.cli("whereis", join(env.source, "Y", "movie.mkv"), "--json");
    expect(where.exitCode).toBe(0);
    expect(existsSync(env.onDisk("Y/movie.mkv"))).toBe(true);
    expect((await env.verify()).exitCode).toBe(0);
    await expectRestoreEqualsSource(env);
  }

  test.skipIf(rootless !== undefined)("a directory renamed on a tmpfs with less free space than the file is a rename, nothing copied", async () => {
    await renameOnFullDisk(["--reserve", "0"], smallDisk("1900k"));
  });

  test("the same with --capacity on a plain directory", async () => {
    await renameOnFullDisk(["--capacity", "1400K"]);
  });

  test("when the new path cannot be stored, the old one stays until it is", async () => {
    env = await archiveEnv(tree);
    expect((await env.run("--match", "path-size-mtime", "--capacity", "1400K")).exitCode).toBe(0);
    const before = readFileSync(join(env.source, "X", "movie.mkv"));
    renameSync(join(env.source, "X"), join(env.source, "Y"));
    // Moved and rewritten in place (same size and mtime): content the archive does not hold, on a disk without room.
    const moved = join(env.source, "Y", "movie.mkv");
    const { atime, mtime } = statSync(moved);
    writeFileSync(moved, seededBytes(600_000, 99));
    utimesSync(moved, atime, mtime);
    const full = await env.run("--match", "path-size-mtime", "--capacity", "1400K");
    expect(full.exitCode).toBe(3);
    expect(full.json).toMatchObject({ deleted: 0, notStored: { files: 1, bytes: 600_000 } });
    expect((await env.cli("whereis", join(env.source, "X", "movie.mkv"), "--json")).exitCode).toBe(0);
    const to = join(env.root, "restored");
    expect((await env.restore(to, join(env.source, "X", "movie.mkv"))).exitCode).toBe(0);
    expect(readFileSync(join(to, env.source, "X", "movie.mkv")).equals(before)).toBe(true);
    // With room, the new path is stored and only then does the old one go.
    const roomy = await env.run("--match", "path-size-mtime", "--capacity", "3M");
    expect(roomy.exitCode).toBe(0);
    expect(roomy.json).toMatchObject({ new: 1, deleted: 1 });
    expect((await env.verify()).exitCode).toBe(0);
    await expectRestoreEqualsSource(env);
  });
});

describe("issue 11.4: a duplicate larger than the disk's free space", () => {
  async function duplicateOnFullDisk(bytes: number, spaceArgs: string[], disk?: string): Promise<void> {
    env = await archiveEnv({ "movie.mkv": { bytes, seed: 3 }, filler: { bytes: 700_000, seed: 4 } }, disk ? { disk } : {});
    expect((await env.run(...spaceArgs)).exitCode).toBe(0);
    // A copy of its own (new inode, new mtime): a duplicate found only by content.
    copyFileSync(join(env.source, "movie.mkv"), join(env.source, "movie copy.mkv"));
    const run = await env.run(...spaceArgs);
    expect(run.json.warnings).toEqual([]);
    expect(run.exitCode).toBe(0);
    expect(run.json).toMatchObject({ new: 1, deduplicated: 1, bytesCopied: 0, notStored: { files: 0, bytes: 0 } });
    expect(statSync(env.onDisk("movie copy.mkv")).ino).toBe(statSync(env.onDisk("movie.mkv")).ino);
    expect((await env.verify()).exitCode).toBe(0);
    await expectRestoreEqualsSource(env);
  }

  test.skipIf(rootless !== undefined)("a small duplicate on a tmpfs without room for it is stored as a hardlink", async () => {
    await duplicateOnFullDisk(600_000, ["--reserve", "0"], smallDisk("1900k"));
  });

  test.skipIf(rootless !== undefined)("a large duplicate (hashed before copying) on a tmpfs without room for it is stored as a hardlink", async () => {
    await duplicateOnFullDisk(1_500_000, ["--reserve", "0"], smallDisk("3000k"));
  });

  test("the same with --capacity on a plain directory", async () => {
    await duplicateOnFullDisk(600_000, ["--capacity", "1400K"]);
    env!.cleanup();
    env = undefined;
    await duplicateOnFullDisk(1_500_000, ["--capacity", "2300K"]);
  });
});

describe("issue 12.2: a file missing or damaged on the disk beyond parity is copied again from the source", () => {
  /** Archived without parity (nothing can repair it there); `movie` and its hardlink share one inode on the disk. */
  async function damagedArchive(): Promise<ArchiveEnv> {
    const archive = await archiveEnv({ "movie.mkv": { bytes: 300_000, seed: 5 }, "doc.txt": "the only copy of a document\n", keep: { "note.txt": "untouched\n", "to note": { symlink: "note.txt" } } });
    linkSync(join(archive.source, "movie.mkv"), join(archive.source, "movie link.mkv"));
    expect((await archive.run("--parity", "off")).exitCode).toBe(0);
    expect(statSync(archive.onDisk("movie link.mkv")).ino).toBe(statSync(archive.onDisk("movie.mkv")).ino);
    // Bit rot in place (every hardlink sees it) and a file gone from the disk.
    const rotten = readFileSync(archive.onDisk("movie.mkv"));
    rotten.fill(0x55, 1000, 9000);
    writeFileSync(archive.onDisk("movie.mkv"), rotten);
    rmSync(archive.onDisk("doc.txt"));
    rmSync(archive.onDisk("keep/to note"));
    writeFileSync(archive.onDisk("keep/to note"), "not a symlink\n");
    return archive;
  }

  test("verify lists the damage and the next run copies it again (hardlinks too)", async () => {
    env = await damagedArchive();
    const found = await env.verify();
    expect(found.exitCode).toBe(4);
    expect(found.json.disks[0].missing).toEqual([join(env.source, "doc.txt")]);
    expect(found.json.disks[0].corrupt.map((item: { path: string }) => item.path).sort()).toEqual([join(env.source, "keep", "to note"), join(env.source, "movie link.mkv"), join(env.source, "movie.mkv")]);
    const run = await env.run("--parity", "off");
    expect(run.exitCode).toBe(0);
    expect(run.json).toMatchObject({ recopied: 4, unchanged: 5, new: 0, modified: 0 });
    expect(readlinkSync(env.onDisk("keep/to note"))).toBe("note.txt");
    expect(statSync(env.onDisk("movie link.mkv")).ino).toBe(statSync(env.onDisk("movie.mkv")).ino);
    expect((await env.verify()).exitCode).toBe(0);
    await expectRestoreEqualsSource(env);
    // Nothing is left to do: a later run copies nothing.
    expect((await env.run("--parity", "off")).json).toMatchObject({ recopied: 0, bytesCopied: 0 });
  });

  test("verify --repair copies it again from the source itself", async () => {
    env = await damagedArchive();
    const repaired = await env.cli("verify", "--repair", "--json");
    expect(repaired.exitCode).toBe(0);
    expect(repaired.json.disks[0].recopied.sort()).toEqual([join(env.source, "doc.txt"), join(env.source, "keep", "to note"), join(env.source, "movie link.mkv"), join(env.source, "movie.mkv")]);
    expect(statSync(env.onDisk("movie link.mkv")).ino).toBe(statSync(env.onDisk("movie.mkv")).ino);
    expect((await env.verify()).exitCode).toBe(0);
    await expectRestoreEqualsSource(env);
  });

  test("a source that no longer holds the content: the damage stays listed and named, nothing else is touched", async () => {
    env = await damagedArchive();
    rmSync(join(env.source, "doc.txt"));
    const repaired = await env.cli("verify", "--repair", "--json");
    expect(repaired.exitCode).toBe(4);
    expect(repaired.json.disks[0].missing).toEqual([join(env.source, "doc.txt")]);
    // The run deletes doc.txt (gone from the source) and has nothing left to copy again.
    const run = await env.run("--parity", "off");
    expect(run.json).toMatchObject({ deleted: 1, recopied: 0 });
    expect((await env.verify()).exitCode).toBe(0);
    await expectRestoreEqualsSource(env);
  });
});

describe("issue 11.11: inodes that changed under unchanged files (cp -a of the tree, a pool rebuilt)", () => {
  const tree = {
    "movie.mkv": { bytes: 1_500_000, seed: 6 },
    "small.txt": "small\n",
    "small link.txt": { hardlinkTo: "small.txt" },
    dir: { "a.bin": { bytes: 3000, seed: 7 }, "to a": { symlink: "a.bin" } },
  };

  /** Replaces the source by a `cp -a` of itself: same paths, sizes, mtimes, modes and content, new inodes. */
  function copyTreeAnew(source: string): void {
    const copy = `${source}.copy`;
    expect(Bun.spawnSync(["cp", "-a", source, copy]).exitCode).toBe(0);
    rmSync(source, { recursive: true });
    renameSync(copy, source);
  }

  /** Paths whose stored inode is not the source's inode now. */
  function staleInodes(archive: ArchiveEnv): string[] {
    const db = new Database(archive.db, { readonly: true });
    try {
      const rows = db.query("SELECT path, ino FROM files").all() as { path: string; ino: number }[];
      return rows.filter((row) => lstatSync(row.path).ino !== row.ino).map((row) => row.path);
    } finally {
      db.close();
    }
  }

  const unchangedRun = { new: 0, modified: 0, renamed: 0, deleted: 0, skipped: 0, unchanged: 5, bytesCopied: 0, deduplicated: 0 };

  test("an inode run counts them unchanged, copies nothing, exits 0 and records the new inodes", async () => {
    env = await archiveEnv(tree);
    expect((await env.run()).exitCode).toBe(0);
    copyTreeAnew(env.source);
    expect(staleInodes(env)).toHaveLength(5);
    const run = await env.run();
    expect(run.json.errors).toEqual([]);
    expect(run.exitCode).toBe(0);
    expect(run.json).toMatchObject(unchangedRun);
    expect(run.json.warnings).toEqual([]);
    expect(staleInodes(env)).toEqual([]);
    expect((await env.cli("pending", "--json")).stdout).not.toMatch(/"link"/);
    expect((await env.run()).json).toMatchObject(unchangedRun);
    expect((await env.verify()).exitCode).toBe(0);
    await expectRestoreEqualsSource(env);
  });

  test("a path-size-mtime run records the new inodes too, so a later inode run finds nothing changed", async () => {
    env = await archiveEnv(tree);
    expect((await env.run()).exitCode).toBe(0);
    copyTreeAnew(env.source);
    const run = await env.run("--match", "path-size-mtime");
    expect(run.exitCode).toBe(0);
    expect(run.json).toMatchObject(unchangedRun);
    expect(staleInodes(env)).toEqual([]);
    expect((await env.run()).json).toMatchObject(unchangedRun);
  });

  test("an inode run still archives a file whose content changed under the same size and mtime", async () => {
    env = await archiveEnv(tree);
    expect((await env.run()).exitCode).toBe(0);
    copyTreeAnew(env.source);
    const changed = join(env.source, "dir", "a.bin");
    const { atime, mtime } = statSync(changed);
    writeFileSync(changed, seededBytes(3000, 70));
    utimesSync(changed, atime, mtime);
    const run = await env.run();
    expect(run.exitCode).toBe(0);
    expect(run.json).toMatchObject({ modified: 1, unchanged: 4, new: 0, deleted: 0 });
    await expectRestoreEqualsSource(env);
  });
});

describe("issue 11.12: --dry-run counts renames as renames", () => {
  test.each([["inode"], ["size-mtime"], ["path-size-mtime"]])("--match %s: a dry run says what the real run then does", async (match) => {
    env = await archiveEnv({ X: { "movie.mkv": { bytes: 200_000, seed: 8 } }, "gone.txt": "deleted for real\n", "kept.txt": "kept\n" });
    expect((await env.run("--match", match)).exitCode).toBe(0);
    renameSync(join(env.source, "X"), join(env.source, "Y"));
    rmSync(join(env.source, "gone.txt"));
    const dry = await env.run("--match", match, "--dry-run");
    expect(dry.exitCode).toBe(0);
    const real = await env.run("--match", match);
    expect(real.exitCode).toBe(0);
    expect(real.json).toMatchObject({ renamed: 1, deleted: 1, new: 0 });
    for (const key of ["new", "modified", "renamed", "deleted", "unchanged", "skipped", "bytesCopied"]) expect([key, dry.json[key]]).toEqual([key, real.json[key]]);
    expect(dry.stdout + dry.stderr).not.toContain(`delete ${join(env.source, "X", "movie.mkv")}`);
  });
});

describe("issue 12.2: content the disk's catalog lists but whose file is gone from the disk", () => {
  test("issue 12.2: a new duplicate of content whose only file on the disk is missing is stored as a copy, not refused on every run", async () => {
    env = await archiveEnv({ "a.txt": "the same bytes in two files\n" });
    expect((await env.run("--parity", "off")).exitCode).toBe(0);
    // Lost from the disk (deleted there, or damage): the catalogs still list it.
    rmSync(env.onDisk("a.txt"));
    // A duplicate alike (same bytes, mtime and mode): the planner makes it a hardlink of a.txt.
    copyFileSync(join(env.source, "a.txt"), join(env.source, "b.txt"));
    expect(Bun.spawnSync(["touch", "-r", join(env.source, "a.txt"), join(env.source, "b.txt")]).exitCode).toBe(0);
    const run = await env.run("--parity", "off");
    expect(run.json.errors).toEqual([]);
    expect(run.exitCode).toBe(0);
    expect(run.json).toMatchObject({ new: 1, notStored: { files: 0, bytes: 0 } });
    expect(readFileSync(env.onDisk("b.txt"), "utf8")).toBe("the same bytes in two files\n");
    const to = join(env.root, "restored");
    expect((await env.restore(to, join(env.source, "b.txt"))).exitCode).toBe(0);
    expect(readFileSync(join(to, env.source, "b.txt"), "utf8")).toBe("the same bytes in two files\n");
  });
});
