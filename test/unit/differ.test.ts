import { afterEach, describe, expect, test } from "bun:test";
import { linkSync, lstatSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { InodeRefresh } from "../../lib/archive/catalog/inode-refresh.ts";
import type { FileRecord } from "../../lib/archive/catalog/records.ts";
import { SeenPaths } from "../../lib/archive/catalog/seen-paths.ts";
import { RunReport } from "../../lib/archive/run/report.ts";
import { diff, type MatchMode } from "../../lib/archive/stages/differ.ts";
import type { FileEntry, PlannedFile } from "../../lib/archive/stages/types.ts";
import { archivedRow, hostCatalog, type HostCatalogFixture } from "../helpers/host-catalog.ts";

/**
 * The differ on its own: walked entries as plain data (the walk faked), a
 * real host catalog holding what earlier runs archived. Paths under /gone
 * exist nowhere, as a renamed file's old name.
 */
let host: HostCatalogFixture;
let diskId: string;
afterEach(() => host?.close());

const MTIME = 1_700_000_000_000;

function entry(path: string, fields: Partial<FileEntry> = {}): FileEntry {
  return { path, kind: "file", size: 100, mtimeMs: MTIME, mtimeNsec: 0, mode: 0o100644, dev: 1, ino: 10, nlink: 1, linkTarget: null, ...fields };
}

/** The archived row of `entry` as a run would have recorded it. */
function archived(e: FileEntry, hash = `sha1:${"a".repeat(40)}`): FileRecord {
  return { path: e.path, kind: e.kind, size: e.size, mtimeMs: e.mtimeMs, mtimeNsec: e.mtimeNsec, mode: e.mode, dev: e.dev, ino: e.ino, hash, linkTarget: e.linkTarget };
}

function setUp(...rows: FileRecord[]): void {
  host = hostCatalog();
  diskId = host.addDisk("A").diskId;
  for (const row of rows) host.archive(row, diskId);
}

async function* walked(entries: readonly FileEntry[]): AsyncGenerator<FileEntry> {
  yield* entries;
}

async function differ(entries: readonly FileEntry[], match: MatchMode = "inode") {
  const report = new RunReport();
  const inodes = new InodeRefresh(host.catalog);
  const planned: PlannedFile[] = [];
  for await (const item of diff(walked(entries), { catalog: host.catalog, match, seen: new SeenPaths(host.catalog), report, inodes })) planned.push(item);
  return { planned, report };
}

describe("differ", () => {
  test("TestNewFile: a path the archive never held is new, with no hash (nothing read), and counts as planned", async () => {
    setUp();
    const { planned, report } = await differ([entry("/src/new", { size: 42 })]);
    expect(planned).toEqual([{ ...entry("/src/new", { size: 42 }), change: "new" }]);
    expect(report.progress).toMatchObject({ plannedFiles: 1, plannedBytes: 42 });
  });

  test("TestModifiedFile: an archived path of another size or mtime is modified, carrying its archived row", async () => {
    const before = entry("/src/a");
    const mtime = entry("/src/b", { ino: 11 });
    setUp(archived(before), archived(mtime, `sha1:${"b".repeat(40)}`));
    const { planned, report } = await differ([entry("/src/a", { size: 101 }), entry("/src/b", { ino: 11, mtimeMs: MTIME + 1000 })]);
    expect(planned.map((p) => [p.path, p.change, p.previous?.hash, p.inodeChanged])).toEqual([
      ["/src/a", "modified", `sha1:${"a".repeat(40)}`, undefined],
      ["/src/b", "modified", `sha1:${"b".repeat(40)}`, undefined],
    ]);
    expect(report.counts.unchanged).toBe(0);
  });

  test("TestUnchangedFileDropped: path, size, mtime, mode and inode as archived: counted unchanged, never yielded", async () => {
    const same = entry("/src/same");
    setUp(archived(same));
    const { planned, report } = await differ([same]);
    expect(planned).toEqual([]);
    expect(report.counts.unchanged).toBe(1);
    expect(report.progress.plannedFiles).toBe(0);
  });

  test("TestModeChanged: a file whose mode alone changed is modified", async () => {
    setUp(archived(entry("/src/a")));
    const { planned } = await differ([entry("/src/a", { mode: 0o100600 })]);
    expect(planned.map((p) => p.change)).toEqual(["modified"]);
  });

  test("TestSymlinkRetargeted: a symlink whose target changed is modified", async () => {
    const link = entry("/src/l", { kind: "symlink", size: 3, linkTarget: "old" });
    setUp(archived(link));
    const { planned, report } = await differ([{ ...link, linkTarget: "new" }, entry("/src/unrelated", { ino: 99 })]);
    expect(planned.map((p) => [p.path, p.change])).toEqual([
      ["/src/l", "modified"],
      ["/src/unrelated", "new"],
    ]);
    expect(report.counts.unchanged).toBe(0);
  });

  test("TestRenamedByInode: a new path with an archived inode whose old path is gone is a rename with the archived hash", async () => {
    const old = entry("/gone/old-name", { ino: 77 });
    setUp(archived(old, `sha1:${"c".repeat(40)}`));
    const { planned, report } = await differ([entry("/src/new-name", { ino: 77 })]);
    expect(planned).toEqual([
      { ...entry("/src/new-name", { ino: 77 }), change: "renamed", renameFrom: "/gone/old-name", hash: `sha1:${"c".repeat(40)}`, action: "rename" },
    ]);
    // A rename moves nothing: no bytes are planned for it.
    expect(report.progress.plannedBytes).toBe(0);
  });

  test("TestRenamedBySizeMtime: on a pool without stable inodes (size-mtime), a new path matching a gone one by size and mtime is a rename", async () => {
    setUp(archived(entry("/gone/old-name", { ino: 5, size: 1234 }), `sha1:${"d".repeat(40)}`));
    const { planned } = await differ([entry("/src/new-name", { ino: 6, size: 1234 })], "size-mtime");
    expect(planned.map((p) => [p.change, p.renameFrom, p.hash])).toEqual([["renamed", "/gone/old-name", `sha1:${"d".repeat(40)}`]]);
  });

  test("TestSizeMtimeCandidateOfOtherKind: a symlink of the same size and mtime as a gone file is no rename of it", async () => {
    setUp(archived(entry("/gone/file", { size: 4 })));
    const { planned } = await differ([entry("/src/link", { kind: "symlink", size: 4, linkTarget: "abcd", ino: 6 })], "size-mtime");
    expect(planned.map((p) => p.change)).toEqual(["new"]);
  });

  test("TestPathSizeMtimeNoRenames: matching by path, size and mtime alone finds no renames: the new name is copied", async () => {
    setUp(archived(entry("/gone/old-name", { ino: 77 })));
    const { planned } = await differ([entry("/src/new-name", { ino: 77 })], "path-size-mtime");
    expect(planned.map((p) => [p.change, p.hash])).toEqual([["new", undefined]]);
  });

  test("TestInodeChangedOnly: by inode, a file whose inode alone changed is handed on for the hasher to tell by content", async () => {
    setUp(archived(entry("/src/a", { ino: 1 })));
    const { planned, report } = await differ([entry("/src/a", { ino: 2 })]);
    expect(planned.map((p) => [p.change, p.inodeChanged, p.previous?.ino])).toEqual([["modified", true, 1]]);
    // Not planned as bytes to copy: it is most likely unchanged.
    expect(report.progress.plannedFiles).toBe(0);
  });

  test("TestInodeChangedTrusted: matching by path, size and mtime, a new inode is unchanged and recorded for later runs", async () => {
    setUp(archived(entry("/src/a", { ino: 1 })));
    const { planned, report } = await differ([entry("/src/a", { ino: 2, dev: 3 })], "path-size-mtime");
    expect(planned).toEqual([]);
    expect(report.counts.unchanged).toBe(1);
    expect(archivedRow(host.catalog, "/src/a")).toMatchObject({ dev: 3, ino: 2 });
  });

  describe("with real files (the differ looks at an archived inode's old name)", () => {
    test("TestSecondHardlink: a new name of an archived inode whose first name is still there is new with the archived hash (stored as a link)", async () => {
      setUp();
      const first = join(host.dir, "first");
      const second = join(host.dir, "second");
      writeFileSync(first, "x".repeat(100));
      linkSync(first, second);
      const stats = lstatSync(first);
      const walkedFirst = entry(first, { dev: stats.dev, ino: stats.ino, nlink: 2 });
      host.archive(archived(walkedFirst, `sha1:${"e".repeat(40)}`), diskId);
      const { planned } = await differ([walkedFirst, { ...walkedFirst, path: second }]);
      expect(planned.map((p) => [p.path, p.change, p.hash, p.renameFrom])).toEqual([[second, "new", `sha1:${"e".repeat(40)}`, undefined]]);
    });

    test("TestDisappearedFile: the first name of a hardlinked pair disappears between the walk and the differ's lstat: the second name is its rename", async () => {
      setUp();
      const first = join(host.dir, "first");
      const second = join(host.dir, "second");
      writeFileSync(first, "x".repeat(100));
      linkSync(first, second);
      const stats = lstatSync(first);
      // The walk saw both names (two links); the first is deleted before the differ reaches the second.
      host.archive(archived(entry(first, { dev: stats.dev, ino: stats.ino }), `sha1:${"f".repeat(40)}`), diskId);
      rmSync(first);
      const { planned } = await differ([entry(second, { dev: stats.dev, ino: stats.ino, nlink: 2 })]);
      expect(planned.map((p) => [p.change, p.renameFrom, p.action])).toEqual([["renamed", first, "rename"]]);
    });

    test("TestReusedInode: an archived inode whose old name now holds another file (inode reused) is no rename: copied as new", async () => {
      setUp();
      const old = join(host.dir, "old");
      writeFileSync(old, "another file now");
      // The catalog says /old had inode 424242; it now has another inode, so it is still there but not this file.
      host.archive(archived(entry(old, { dev: lstatSync(old).dev, ino: 424242 })), diskId);
      const { planned } = await differ([entry(join(host.dir, "new"), { dev: lstatSync(old).dev, ino: 424242, nlink: 2 })]);
      expect(planned.map((p) => [p.change, p.hash])).toEqual([["new", undefined]]);
    });
  });
});
