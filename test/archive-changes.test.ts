import { setDefaultTimeout, afterEach, describe, expect, test } from "bun:test";
import { appendFileSync, chmodSync, linkSync, mkdirSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync, statSync, utimesSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { archiveEnv, type ArchiveEnv } from "./helpers/archive-env.ts";
import { filesOf, snapshotTree } from "./helpers/fixture.ts";

// These tests run the real CLI on real trees (and kill it, and re-run it): Bun's 5 s default is too short.
setDefaultTimeout(120_000);

let env: ArchiveEnv | undefined;
afterEach(() => {
  env?.cleanup();
  env = undefined;
});

/** The restored tree must equal the source byte for byte, with modes, mtimes, symlinks and hardlinks. */
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

const counts = (json: any) => ({
  new: json.new,
  modified: json.modified,
  renamed: json.renamed,
  deleted: json.deleted,
  unchanged: json.unchanged,
  deduplicated: json.deduplicated,
});

describe("blaine run: what a change does", () => {
  test("every mode comes through: on the disk and back from restore (setuid, group-writable, private, executable)", async () => {
    env = await archiveEnv({ plain: "a", script: "b", private: "c", shared: "d", setuid: "e", open: "f" });
    const modes: Record<string, number> = { plain: 0o644, script: 0o755, private: 0o600, shared: 0o664, setuid: 0o4755, open: 0o777 };
    for (const [name, mode] of Object.entries(modes)) chmodSync(join(env.source, name), mode);
    expect((await env.run()).exitCode).toBe(0);
    for (const [name, mode] of Object.entries(modes)) expect(statSync(env.onDisk(name)).mode & 0o7777).toBe(mode);
    await expectRestoreEqualsSource(env);
  });

  test("first run archives everything; the disk mirrors absolute paths; a re-run changes nothing", async () => {
    env = await archiveEnv({ movies: { "a.mkv": { bytes: 300_000, seed: 1 }, "b.mkv": { bytes: 5000, seed: 2 } }, "notes.txt": "hi" });
    const first = await env.run();
    expect(first.exitCode).toBe(0);
    expect(counts(first.json)).toEqual({ new: 3, modified: 0, renamed: 0, deleted: 0, unchanged: 0, deduplicated: 0 });
    expect(first.json.bytesCopied).toBe(305_002);
    // Readable with cp and no Blaine: the data is a plain mirror.
    expect(readFileSync(env.onDisk("notes.txt"), "utf8")).toBe("hi");
    expect(statSync(env.onDisk("movies/a.mkv")).mtimeMs).toBeCloseTo(statSync(join(env.source, "movies/a.mkv")).mtimeMs, 0);
    const again = await env.run();
    expect(counts(again.json)).toEqual({ new: 0, modified: 0, renamed: 0, deleted: 0, unchanged: 3, deduplicated: 0 });
    expect(again.json.bytesCopied).toBe(0);
    await expectRestoreEqualsSource(env);
  });

  test("a file modified in place with the same size is re-archived", async () => {
    env = await archiveEnv({ "f.bin": { bytes: 10_000, seed: 1 } });
    await env.run();
    const path = join(env.source, "f.bin");
    const data = readFileSync(path);
    data[5000] ^= 0xff;
    writeFileSync(path, data);
    utimesSync(path, new Date(), new Date(Date.now() + 5000));
    const second = await env.run();
    expect(counts(second.json)).toMatchObject({ modified: 1, new: 0 });
    expect(readFileSync(env.onDisk("f.bin"))).toEqual(data);
    await expectRestoreEqualsSource(env);
  });

  test("a renamed file and a file moved across directories are renamed on the disk, no data copied", async () => {
    env = await archiveEnv({ a: { "x.mkv": { bytes: 200_000, seed: 1 } }, b: {}, "y.mkv": { bytes: 100_000, seed: 2 } });
    await env.run();
    renameSync(join(env.source, "a/x.mkv"), join(env.source, "b/x-moved.mkv"));
    renameSync(join(env.source, "y.mkv"), join(env.source, "y-renamed.mkv"));
    const second = await env.run();
    expect(counts(second.json)).toEqual({ new: 0, modified: 0, renamed: 2, deleted: 0, unchanged: 0, deduplicated: 0 });
    expect(second.json.bytesCopied).toBe(0);
    await expectRestoreEqualsSource(env);
  });

  test("swapped names end up right", async () => {
    env = await archiveEnv({ one: { bytes: 4000, seed: 1 }, two: { bytes: 4000, seed: 2 } });
    await env.run();
    renameSync(join(env.source, "one"), join(env.source, "tmp"));
    renameSync(join(env.source, "two"), join(env.source, "one"));
    renameSync(join(env.source, "tmp"), join(env.source, "two"));
    const second = await env.run();
    expect(second.exitCode).toBe(0);
    expect(second.json.modified).toBe(2);
    await expectRestoreEqualsSource(env);
  });

  test("hardlinked sources stay hardlinked on the disk and in the restore", async () => {
    env = await archiveEnv({ a: { bytes: 50_000, seed: 1 }, dir: { b: { hardlinkTo: "a" } } });
    const first = await env.run();
    expect(first.json.new).toBe(2);
    expect(first.json.deduplicated).toBe(1);
    expect(statSync(env.onDisk("a")).ino).toBe(statSync(env.onDisk("dir/b")).ino);
    // A new hardlink to an archived file, added later, is stored as a hardlink too.
    linkSync(join(env.source, "a"), join(env.source, "c"));
    const second = await env.run();
    expect(counts(second.json)).toMatchObject({ new: 1, deduplicated: 1 });
    expect(second.json.bytesCopied).toBe(0);
    expect(statSync(env.onDisk("c")).ino).toBe(statSync(env.onDisk("a")).ino);
    await expectRestoreEqualsSource(env);
  });

  test("duplicated content is stored once, as a hardlink", async () => {
    env = await archiveEnv({ "orig.bin": { bytes: 80_000, seed: 9 } });
    await env.run();
    // cp -p: the same mtime and mode, so the two disk copies may share an inode (issue 12.11).
    expect(Bun.spawnSync(["cp", "-p", join(env.source, "orig.bin"), join(env.source, "copy.bin")]).exitCode).toBe(0);
    const second = await env.run();
    expect(counts(second.json)).toMatchObject({ new: 1, deduplicated: 1 });
    expect(second.json.bytesCopied).toBe(0);
    expect(statSync(env.onDisk("copy.bin")).ino).toBe(statSync(env.onDisk("orig.bin")).ino);
    await expectRestoreEqualsSource(env);
  });

  test("a duplicate whose only holder is renamed in the same batch is stored as a hardlink, not copied again", async () => {
    env = await archiveEnv({ "m-orig.bin": { bytes: 80_000, seed: 9 } });
    await env.run();
    // cp -p: the same mtime and mode, so the two disk copies may share an inode (issue 12.11).
    expect(Bun.spawnSync(["cp", "-p", join(env.source, "m-orig.bin"), join(env.source, "z-copy.bin")]).exitCode).toBe(0);
    // The rename sorts before the duplicate: in their batch it comes first, and the duplicate's only holder is its old name.
    renameSync(join(env.source, "m-orig.bin"), join(env.source, "a-renamed.bin"));
    const second = await env.run();
    expect(second.exitCode).toBe(0);
    expect(counts(second.json)).toMatchObject({ new: 1, renamed: 1, deduplicated: 1, deleted: 0 });
    expect(second.json.bytesCopied).toBe(0);
    expect(statSync(env.onDisk("z-copy.bin")).ino).toBe(statSync(env.onDisk("a-renamed.bin")).ino);
    await expectRestoreEqualsSource(env);
  });

  test("a deleted file is removed from the disk and the catalog; empty directories go too", async () => {
    env = await archiveEnv({ keep: "k", old: { "gone.txt": "g" } });
    await env.run();
    rmSync(join(env.source, "old"), { recursive: true });
    const second = await env.run("--max-delete", "5");
    expect(counts(second.json)).toMatchObject({ deleted: 1, unchanged: 1 });
    expect(() => statSync(env!.onDisk("old"))).toThrow();
    const listed = await env.cli("ls", "--json");
    expect(listed.json.files.map((row: any) => row.path)).toEqual([join(env.source, "keep")]);
    await expectRestoreEqualsSource(env);
  });

  test("a deletion the disk refuses is reported and not counted as deleted; the file stays archived and the next run deletes it", async () => {
    if (process.getuid?.() !== 0) {
      console.log("skipped: bind-mounting a file over an archived file (so that its unlink fails with EBUSY) needs root");
      return;
    }
    env = await archiveEnv({ "keep.txt": "kept\n", "gone.txt": "removed from the source\n" });
    expect((await env.run()).exitCode).toBe(0);
    unlinkSync(join(env.source, "gone.txt"));
    // A file mounted over the archived one: unlinking it fails (EBUSY), as a deletion on a disk that refuses it does.
    const over = join(env.root, "mounted-over");
    writeFileSync(over, "x\n");
    const onDisk = env.onDisk("gone.txt");
    expect(Bun.spawnSync(["mount", "--bind", over, onDisk]).exitCode).toBe(0);
    let refused;
    try {
      refused = await env.run();
    } finally {
      Bun.spawnSync(["umount", onDisk]);
    }
    expect(refused.json.errors.map((error: { path: string }) => error.path)).toEqual([join(env.source, "gone.txt")]);
    expect(refused.exitCode).toBe(1);
    expect(refused.json.deleted).toBe(0);
    expect((await env.cli("whereis", join(env.source, "gone.txt"), "--json")).exitCode).toBe(0);
    const again = await env.run();
    expect(again.exitCode).toBe(0);
    expect(again.json.deleted).toBe(1);
    await expectRestoreEqualsSource(env);
  });

  test("a rename without a stable inode (path-size-mtime) is found by content and counted as a rename", async () => {
    env = await archiveEnv({ "a.bin": { bytes: 30_000, seed: 3 }, other: "o" });
    await env.run("--match", "path-size-mtime");
    // Copy to a new inode (cp -p: same mtime) and delete the old one: what a pool rebalance looks like.
    expect(Bun.spawnSync(["cp", "-p", join(env.source, "a.bin"), join(env.source, "b.bin")]).exitCode).toBe(0);
    unlinkSync(join(env.source, "a.bin"));
    const second = await env.run("--match", "path-size-mtime", "--max-delete", "5");
    expect(counts(second.json)).toEqual({ new: 0, modified: 0, renamed: 1, deleted: 0, unchanged: 1, deduplicated: 0 });
    expect(second.json.bytesCopied).toBe(0);
    await expectRestoreEqualsSource(env);
  });

  test("files rewritten to new inodes are unchanged under --match path-size-mtime", async () => {
    env = await archiveEnv({ a: "1", b: "22" });
    await env.run();
    for (const name of ["a", "b"]) {
      // cp -p keeps the nanosecond mtime, as a pool moving files between branches does.
      const path = join(env.source, name);
      const inodeBefore = statSync(path).ino;
      expect(Bun.spawnSync(["cp", "-p", path, `${path}.new`]).exitCode).toBe(0);
      renameSync(`${path}.new`, path);
      expect(statSync(path).ino).not.toBe(inodeBefore);
    }
    const loose = await env.run("--match", "path-size-mtime");
    expect(loose.json.unchanged).toBe(2);
    expect(loose.json.bytesCopied).toBe(0);
  });

  test("a retargeted symlink is re-archived as a symlink", async () => {
    env = await archiveEnv({ target1: "1", target2: "2", link: { symlink: "target1" } });
    await env.run();
    unlinkSync(join(env.source, "link"));
    symlinkSync("target2", join(env.source, "link"));
    const second = await env.run();
    expect(second.json.modified).toBe(1);
    expect(snapshotTree(env.onDisk()).link).toEqual({ type: "symlink", target: "target2" });
    await expectRestoreEqualsSource(env);
  });

  test("a directory replaced by a file and new files in new directories", async () => {
    env = await archiveEnv({ x: { inner: "i" } });
    await env.run();
    rmSync(join(env.source, "x"), { recursive: true });
    mkdirSync(join(env.source, "deep/er/still"), { recursive: true });
    writeFileSync(join(env.source, "deep/er/still/file"), "d");
    appendFileSync(join(env.source, "y"), "y");
    const second = await env.run("--max-delete", "5");
    expect(second.exitCode).toBe(0);
    expect(counts(second.json)).toMatchObject({ new: 2, deleted: 1 });
    await expectRestoreEqualsSource(env);
  });
});
