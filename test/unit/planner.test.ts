import { afterEach, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { contentKey, showsAlike, type Content, type Held } from "../../lib/archive/catalog/content-holders.ts";
import type { FileRecord } from "../../lib/archive/catalog/records.ts";
import { RunLinks } from "../../lib/archive/catalog/run-links.ts";
import { Planner, type ArchiveHolder, type FileChange, type PlannerView } from "../../lib/archive/run/planner.ts";
import type { PlannedFile } from "../../lib/archive/stages/types.ts";
import { tempDir } from "../helpers/fixture.ts";
import { hostCatalog, type HostCatalogFixture } from "../helpers/host-catalog.ts";

/**
 * The planner's decisions with a small fake of what it reads (PlannerView):
 * the archive as a list of rows with their disks, which disks this run
 * writes, and the disk new data goes to. Each test is named for the case
 * it decides.
 */
const MTIME = 1_700_000_000_000;
const HASH = `sha1:${"a".repeat(40)}`;
const OTHER_HASH = `sha1:${"b".repeat(40)}`;

type ArchivedRow = FileRecord & { readonly diskId: string };

function row(path: string, diskId: string, fields: Partial<FileRecord> = {}): ArchivedRow {
  return { path, kind: "file", size: 100, mtimeMs: MTIME, mtimeNsec: 0, mode: 0o100644, dev: 1, ino: 1, hash: HASH, linkTarget: null, diskId, ...fields };
}

/** The record of a new path holding the same content as `row` (same bytes, mtime and mode unless changed). */
function like(path: string, fields: Partial<FileRecord> = {}): FileRecord {
  return { path, kind: "file", size: 100, mtimeMs: MTIME, mtimeNsec: 0, mode: 0o100644, dev: 1, ino: 50, hash: HASH, linkTarget: null, ...fields };
}

interface World {
  /** The disk new data goes to. */
  readonly target: string;
  /** Disks with a copy mounted and written by this run. */
  readonly written: readonly string[];
  /** What the catalogs hold (a written disk's catalog agrees with the host's). */
  readonly rows: readonly ArchivedRow[];
  /** Paths each behind copy's queue still changes. */
  readonly waiting?: Readonly<Record<string, readonly string[]>>;
}

/** Holders of a content among `rows`, those showing its mtime and mode first. */
function holders<T>(rows: readonly ArchivedRow[], content: Content, holder: (row: ArchivedRow) => T): Held<T>[] {
  return rows
    .filter((r) => r.kind === "file" && r.hash === content.hash && r.size === content.size)
    .map((r) => ({ holder: holder(r), alike: showsAlike(r, content) }))
    .sort((a, b) => Number(b.alike) - Number(a.alike));
}

function byContent<T>(contents: readonly Content[], of: (content: Content) => Held<T>[]): Map<string, Held<T>[]> {
  const found = new Map<string, Held<T>[]>();
  for (const content of contents) {
    const list = of(content);
    if (list.length > 0) found.set(contentKey(content), list);
  }
  return found;
}

function fakeView(world: World): PlannerView {
  const onDisk = (diskId: string, content: Content) => holders(world.rows.filter((r) => r.diskId === diskId), content, (r) => r.path);
  const inArchive = (content: Content) => holders<ArchiveHolder>(world.rows, content, (r) => ({ path: r.path, diskId: r.diskId }));
  return {
    targetDisk: () => world.target,
    writtenNow: (diskId) => world.written.includes(diskId),
    waitingPaths: (diskId) => (world.waiting?.[diskId] ? new Set(world.waiting[diskId]) : undefined),
    locate: (path) => {
      const found = world.rows.find((r) => r.path === path);
      return found ? { diskId: found.diskId, hash: found.hash } : null;
    },
    holdersOnDisk: onDisk,
    holdersOnDiskOfEach: (diskId, contents) => byContent(contents, (content) => onDisk(diskId, content)),
    holdersInArchive: inArchive,
    holdersInArchiveOfEach: (contents) => byContent(contents, inArchive),
    symlinkNamesOn: (diskId, record) =>
      world.rows
        .filter((r) => r.diskId === diskId && r.kind === "symlink" && r.dev === record.dev && r.ino === record.ino && r.linkTarget === record.linkTarget && r.path !== record.path)
        .map((r) => r.path),
    mayHoldSize: (size) => world.rows.some((r) => r.size === size),
  };
}

function planned(record: FileRecord, fields: Partial<PlannedFile> = {}): PlannedFile {
  const { hash: _hash, mtimeNsec, ...entry } = record;
  return { ...entry, mtimeNsec: mtimeNsec ?? undefined, nlink: 1, change: "new", ...fields };
}

describe("planner: before the data moves (plan)", () => {
  const world: World = { target: "A", written: ["A"], rows: [row("/s/held-on-A", "A"), row("/s/held-on-B", "B", { hash: OTHER_HASH })] };
  const planner = new Planner(fakeView(world));

  test("TestRenameStaysRename: a rename found by the differ moves the archived file, nothing copied", () => {
    const item = planned(like("/s/new-name"), { change: "renamed", renameFrom: "/s/old-name", hash: HASH, action: "rename" });
    expect(planner.plan(item).action).toBe("rename");
  });

  test("TestSymlinkMadeAgain: a symlink is made anew on the disk, never copied", () => {
    expect(planner.plan(planned(like("/s/link", { kind: "symlink", linkTarget: "x", size: 1 }))).action).toBe("symlink");
  });

  test("TestHeldContentBecomesHardlink: content the target disk holds, showing the same mtime and mode, is a hardlink", () => {
    expect(planner.plan(planned(like("/s/dup"), { hash: HASH })).action).toBe("link");
  });

  test("TestContentHeldOnAnotherDisk: content another disk holds alike is a hardlink there, not a second copy", () => {
    expect(planner.plan(planned(like("/s/dup", { hash: OTHER_HASH }), { hash: OTHER_HASH })).action).toBe("link");
  });

  test("TestSameBytesOtherMtimeCopied: the same bytes under another mtime are copied (a hardlink would show the holder's mtime)", () => {
    expect(planner.plan(planned(like("/s/dup", { mtimeMs: MTIME + 5000 }), { hash: HASH })).action).toBe("copy");
  });

  test("TestUnhashedFileCopied: a file whose hash was not read (no duplicate possible) is copied", () => {
    expect(planner.plan(planned(like("/s/new"))).action).toBe("copy");
  });
});

describe("planner: a copy that found no room (linkWhenNoRoom)", () => {
  let dir: { path: string; cleanup: () => void } | undefined;
  afterEach(() => dir?.cleanup());

  test("TestDuplicateTooBigForFreeSpaceBecomesHardlink: content the archive holds under another mtime is stored as a hardlink rather than not at all", () => {
    const planner = new Planner(fakeView({ target: "A", written: ["A"], rows: [row("/s/original", "A")] }));
    const item = planned(like("/s/duplicate", { mtimeMs: MTIME + 60_000 }), { hash: HASH, action: "copy" });
    expect(planner.linkWhenNoRoom(item, "sha1")).toMatchObject({ path: "/s/duplicate", action: "link", hash: HASH });
  });

  test("TestUnreadFileHashedThenLinked: a file whose hash was never read is read once and linked when the archive holds its content", () => {
    dir = tempDir("blaine-unit-");
    const path = join(dir.path, "moved");
    writeFileSync(path, "x".repeat(100));
    const hash = `sha1:${new Bun.CryptoHasher("sha1").update("x".repeat(100)).digest("hex")}`;
    const planner = new Planner(fakeView({ target: "A", written: ["A"], rows: [row("/s/old", "A", { hash })] }));
    expect(planner.linkWhenNoRoom(planned(like(path), { action: "copy" }), "sha1")).toMatchObject({ action: "link", hash });
  });

  test("TestNoRoomContentNotHeld: content nobody holds stays a copy that does not fit", () => {
    const planner = new Planner(fakeView({ target: "A", written: ["A"], rows: [row("/s/other", "A", { hash: OTHER_HASH })] }));
    expect(planner.linkWhenNoRoom(planned(like("/s/new"), { hash: HASH, action: "copy" }), "sha1")).toBeUndefined();
  });

  test("TestNoRoomFileChangedSize: a file whose size changed since the walk is not taken for held content", () => {
    dir = tempDir("blaine-unit-");
    const path = join(dir.path, "growing");
    writeFileSync(path, "x".repeat(150));
    const planner = new Planner(fakeView({ target: "A", written: ["A"], rows: [row("/s/old", "A")] }));
    expect(planner.linkWhenNoRoom(planned(like(path), { action: "copy" }), "sha1")).toBeUndefined();
  });

  test("TestNoRoomDisappearedFile: a file gone before it could be read stays a copy that does not fit (reported so)", () => {
    dir = tempDir("blaine-unit-");
    const planner = new Planner(fakeView({ target: "A", written: ["A"], rows: [row("/s/old", "A")] }));
    expect(planner.linkWhenNoRoom(planned(like(join(dir.path, "gone")), { action: "copy" }), "sha1")).toBeUndefined();
  });

  test("TestReplanCopiesAfterAll: a file whose link or rename could not be made is copied (a rename becomes new), a symlink made anew", () => {
    const planner = new Planner(fakeView({ target: "A", written: ["A"], rows: [] }));
    expect(planner.replan(planned(like("/s/b"), { change: "renamed", renameFrom: "/s/a", action: "rename", hash: HASH }))).toMatchObject({ change: "new", action: "copy" });
    expect(planner.replan(planned(like("/s/l", { kind: "symlink", linkTarget: "t" }), { action: "symlink" })).action).toBe("symlink");
  });
});

describe("planner: where each change of a batch goes (placeBatch)", () => {
  const copied = (record: FileRecord, diskId = "A", tempName = `t-${record.path}`): FileChange => ({ op: "copied", record, tempName, diskId });

  test("TestNewContentCopiedOnItsDisk: a copy of new content is placed on the disk it was copied to", () => {
    const planner = new Planner(fakeView({ target: "A", written: ["A"], rows: [] }));
    expect(planner.placeBatch([copied(like("/s/new"))])).toEqual([{ when: "now", diskId: "A", change: { op: "place", record: like("/s/new"), tempName: "t-/s/new" }, storedAs: "copy" }]);
  });

  test("TestDuplicateFoundLateBecomesHardlink: a copy of content its disk holds alike is a hardlink to it; the copied temp is not needed", () => {
    const planner = new Planner(fakeView({ target: "A", written: ["A"], rows: [row("/s/original", "A")] }));
    expect(planner.placeBatch([copied(like("/s/dup"))])).toEqual([
      { when: "now", diskId: "A", change: { op: "link", record: like("/s/dup"), from: ["/s/original"] }, storedAs: "link", unneededTemp: { diskId: "A", tempName: "t-/s/dup" } },
    ]);
  });

  test("TestDuplicateOnOfflineDiskDeferredLink: content only an offline disk holds is a hardlink queued for that disk, not a second copy", () => {
    const planner = new Planner(fakeView({ target: "A", written: ["A"], rows: [row("/s/original", "B")] }));
    expect(planner.placeBatch([copied(like("/s/dup"))])).toEqual([
      { when: "deferred", change: { op: "link", diskId: "B", record: like("/s/dup") }, storedAs: "link", unneededTemp: { diskId: "A", tempName: "t-/s/dup" } },
    ]);
  });

  test("TestDuplicateOnOtherWrittenDisk: content another disk written now holds is a hardlink made there now", () => {
    const planner = new Planner(fakeView({ target: "A", written: ["A", "B"], rows: [row("/s/original", "B")] }));
    const [placement] = planner.placeBatch([copied(like("/s/dup"))]);
    expect(placement).toMatchObject({ when: "now", diskId: "B", change: { op: "link", from: ["/s/original"] }, storedAs: "link" });
  });

  test("TestDuplicateOtherMtimeKeptAsCopy: a copy of content held only under another mtime stays a copy (the disk stays a plain mirror)", () => {
    const planner = new Planner(fakeView({ target: "A", written: ["A"], rows: [row("/s/original", "A", { mtimeMs: MTIME - 1000 })] }));
    expect(planner.placeBatch([copied(like("/s/dup"))])[0]).toMatchObject({ when: "now", change: { op: "place" }, storedAs: "copy" });
  });

  test("TestTwoCopiesInOneBatch: content copied twice in one batch is placed once, the second a hardlink to the first", () => {
    const planner = new Planner(fakeView({ target: "A", written: ["A"], rows: [] }));
    const [first, second] = planner.placeBatch([copied(like("/s/one")), copied(like("/s/two", { ino: 51 }))]);
    expect(first).toMatchObject({ when: "now", change: { op: "place" }, storedAs: "copy" });
    expect(second).toMatchObject({ when: "now", diskId: "A", change: { op: "link", from: [{ inBatch: 0 }] }, storedAs: "link" });
  });

  test("TestPlannedLinkWhoseHolderIsGone: a hardlink planned to content no disk holds any more is planned again as a copy", () => {
    const planner = new Planner(fakeView({ target: "A", written: ["A"], rows: [] }));
    expect(planner.placeBatch([{ op: "link", record: like("/s/dup") }])).toEqual([{ when: "replan", reason: "no disk holds its content any more" }]);
  });

  test("TestPlannedLinkAnyHolder: a hardlink planned where no copy fitted takes a holder of another mtime", () => {
    const planner = new Planner(fakeView({ target: "A", written: ["A"], rows: [row("/s/original", "A", { mtimeMs: MTIME - 1000 })] }));
    expect(planner.placeBatch([{ op: "link", record: like("/s/dup") }])[0]).toMatchObject({ when: "now", diskId: "A", change: { op: "link", from: ["/s/original"] } });
  });

  test("TestRenameGoesToItsDisk: a rename is made on the disk holding the old path: now when written, deferred when offline", () => {
    const planner = new Planner(fakeView({ target: "A", written: ["A"], rows: [row("/s/on-a", "A"), row("/s/on-b", "B", { ino: 2 })] }));
    const [onA, onB] = planner.placeBatch([
      { op: "rename", fromPath: "/s/on-a", record: like("/s/a2") },
      { op: "rename", fromPath: "/s/on-b", record: like("/s/b2", { ino: 2 }) },
    ]);
    expect(onA).toMatchObject({ when: "now", diskId: "A", change: { op: "rename", fromPath: "/s/on-a" }, storedAs: "rename" });
    expect(onB).toEqual({ when: "deferred", change: { op: "rename", diskId: "B", fromPath: "/s/on-b", record: like("/s/b2", { ino: 2 }) }, storedAs: "rename" });
  });

  test("TestRenameOfPathNoLongerArchived: a rename whose old path is not archived any more is planned again as a copy", () => {
    const planner = new Planner(fakeView({ target: "A", written: ["A"], rows: [] }));
    expect(planner.placeBatch([{ op: "rename", fromPath: "/s/gone", record: like("/s/new") }])).toEqual([{ when: "replan", reason: "/s/gone is no longer archived" }]);
  });

  test("TestDeleteOnOfflineDiskDeferred: a deletion of a path an offline disk holds waits in that disk's queue", () => {
    const planner = new Planner(fakeView({ target: "A", written: ["A"], rows: [row("/s/on-b", "B")] }));
    expect(planner.placeBatch([{ op: "delete", path: "/s/on-b" }])).toEqual([{ when: "deferred", change: { op: "delete", diskId: "B", path: "/s/on-b" }, storedAs: "delete" }]);
  });

  test("TestDeferredLinkNotToPathTheBatchChanges: an offline disk's holder that this batch renames away is no hardlink source: the copy stays", () => {
    const planner = new Planner(fakeView({ target: "A", written: ["A"], rows: [row("/s/original", "B")] }));
    const [, dup] = planner.placeBatch([{ op: "rename", fromPath: "/s/original", record: like("/s/renamed") }, copied(like("/s/dup"))]);
    expect(dup).toMatchObject({ when: "now", diskId: "A", change: { op: "place" }, storedAs: "copy" });
  });

  test("TestDuplicateOfPathRenamedInSameBatch: a duplicate whose only holder the same batch renames is a hardlink to it (links are made before the batch's changes)", () => {
    const planner = new Planner(fakeView({ target: "A", written: ["A"], rows: [row("/s/original", "A")] }));
    const [, dup] = planner.placeBatch([{ op: "rename", fromPath: "/s/original", record: like("/s/renamed", { ino: 1 }) }, copied(like("/s/dup"))]);
    expect(dup).toMatchObject({ when: "now", diskId: "A", change: { op: "link", from: ["/s/original"] }, storedAs: "link" });
  });

  test("TestDuplicateOfPathReplacedOnOtherWrittenDisk: a duplicate whose only holder (on a disk written now) the batch gives new content on the target disk is a hardlink on the holder's disk, not a second copy", () => {
    const planner = new Planner(fakeView({ target: "B", written: ["A", "B"], rows: [row("/s/a", "A")] }));
    const [replaced, dup] = planner.placeBatch([copied(like("/s/a", { hash: OTHER_HASH, ino: 7 }), "B"), { op: "link", record: like("/s/b") }]);
    expect(replaced).toMatchObject({ when: "now", diskId: "B", change: { op: "place" }, storedAs: "copy" });
    expect(dup).toMatchObject({ when: "now", diskId: "A", change: { op: "link", from: ["/s/a"] }, storedAs: "link" });
  });

  test("TestContentWhoseLinkFailedIsCopied: once a hardlink to a content could not be made (its file the catalog lists is gone from the disk), that content is copied for the rest of the run, not linked to the missing file again", () => {
    const planner = new Planner(fakeView({ target: "A", written: ["A"], rows: [row("/s/missing-on-disk", "A")] }));
    expect(planner.placeBatch([copied(like("/s/dup"))])[0]).toMatchObject({ change: { op: "link" } });
    // The disk writer reported it for replanning: the file comes back as a copy.
    expect(planner.replan(planned(like("/s/dup"), { hash: HASH, action: "link" })).action).toBe("copy");
    expect(planner.placeBatch([copied(like("/s/dup"))])).toEqual([{ when: "now", diskId: "A", change: { op: "place", record: like("/s/dup"), tempName: "t-/s/dup" }, storedAs: "copy" }]);
    expect(planner.plan(planned(like("/s/another"), { hash: HASH })).action).toBe("copy");
    expect(planner.placeBatch([{ op: "link", record: like("/s/planned-earlier") }])[0]).toMatchObject({ when: "replan" });
  });

  test("TestBehindCopyKeepsOrder: on a written copy whose queue still changes a path, a change of that path is queued behind it", () => {
    const planner = new Planner(fakeView({ target: "A", written: ["A"], rows: [row("/s/waits", "A")], waiting: { A: ["/s/waits"] } }));
    const [waits, free] = planner.placeBatch([{ op: "delete", path: "/s/waits" }, copied(like("/s/free", { hash: OTHER_HASH }))]);
    expect(waits).toEqual({ when: "deferred", change: { op: "delete", diskId: "A", path: "/s/waits" }, storedAs: "delete" });
    expect(free).toMatchObject({ when: "now", diskId: "A", storedAs: "copy" });
  });

  test("TestSecondNameOfSymlink: a second name of an archived source symlink is a hardlink of it on the disk", () => {
    const symlink = { kind: "symlink" as const, size: 1, linkTarget: "t", dev: 9, ino: 9 };
    const planner = new Planner(fakeView({ target: "A", written: ["A"], rows: [row("/s/first", "A", symlink)] }));
    expect(planner.placeBatch([{ op: "symlink", record: like("/s/second", symlink) }])[0]).toMatchObject({ when: "now", change: { op: "symlink", from: ["/s/first"] } });
  });
});

describe("old names kept while their content is not stored (RunLinks, a real host catalog)", () => {
  let host: HostCatalogFixture | undefined;
  afterEach(() => host?.close());

  test("TestOldPathKeptWhenNewNotStored: a vanished path whose content a file the run could not store may hold is kept", () => {
    host = hostCatalog();
    const links = new RunLinks(host.catalog);
    links.notStored(100, HASH);
    // A file too large to read again (not hashed): any vanished path of its size may be it.
    links.notStored(200, undefined);
    expect(links.mayBeUnstored(HASH, 100)).toBe(true);
    expect(links.mayBeUnstored(OTHER_HASH, 100)).toBe(false);
    expect(links.mayBeUnstored(OTHER_HASH, 200)).toBe(true);
    expect(links.mayBeUnstored(HASH, 300)).toBe(false);
  });
});
