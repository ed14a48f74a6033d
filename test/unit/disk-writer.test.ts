import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { FileRecord } from "../../lib/archive/catalog/records.ts";
import { initDisk } from "../../lib/archive/commands/disk-init.ts";
import { openArchive, type OpenedArchive } from "../../lib/archive/commands/open-disks.ts";
import { DiskWriter, recoverDisk, type DiskChange, type Placer } from "../../lib/archive/disk/disk-writer.ts";
import { decodeIntents } from "../../lib/archive/disk/intents.ts";
import { loadSettings, type Settings } from "../../lib/archive/settings.ts";
import { hashLinkTarget } from "../../lib/hashing.ts";
import { DataTreeDirs } from "../../lib/fs/data-tree-dirs.ts";
import { placeFile } from "../../lib/fs/place-file.ts";
import { diskContents } from "../helpers/multi-disk-env.ts";
import { tempDir } from "../helpers/fixture.ts";
import { archivedPaths, archivedRow } from "../helpers/host-catalog.ts";

/**
 * The disk writer's commit protocol on a real disk in a temp directory (made
 * by `disk init`'s own function, opened as every command opens it), driven
 * in-process: temps → intents → file-system changes → one transaction, and
 * recovery from the file system alone when a batch stopped half way. A
 * batch of 64 or more placements goes to the placer, which the test gives:
 * it looks at the disk at the moment the placements start, and can stop
 * the batch there as a kill would.
 */
let dir: { path: string; cleanup: () => void } | undefined;
let archive: OpenedArchive | undefined;
afterEach(() => {
  archive?.close();
  archive = undefined;
  dir?.cleanup();
  dir = undefined;
});

async function openDisk() {
  dir = tempDir("blaine-unit-");
  const disk = join(dir.path, "disk");
  const settings: Settings = loadSettings({ db: join(dir.path, "host.db"), dest: disk }, [], dir.path);
  await initDisk(settings, { dir: disk, label: "A" });
  archive = await openArchive(settings, { write: true });
  return { settings, disk: archive.disks[0], catalog: archive.catalog };
}

let inode = 1000;
/** A copied file waiting in the disk's tmp, as the copier leaves it, and its placement. */
function copied(writer: DiskWriter, path: string, content = `content of ${path}`): DiskChange {
  const tempName = writer.newTempName();
  writeFileSync(writer.tempPath(tempName), content);
  const hash = `sha1:${new Bun.CryptoHasher("sha1").update(content).digest("hex")}`;
  const stats = lstatSync(writer.tempPath(tempName));
  const record: FileRecord = { path, kind: "file", size: stats.size, mtimeMs: stats.mtimeMs, mtimeNsec: null, mode: stats.mode, dev: 1, ino: inode++, hash, linkTarget: null };
  return { op: "place", record, tempName };
}

const many = (writer: DiskWriter, count: number, prefix: string) => Array.from({ length: count }, (_, i) => copied(writer, `/src/${prefix}/f${String(i).padStart(3, "0")}`));

type Moves = readonly { temp: string; target: string }[];

/** A placer that places the moves as the copy workers do, after `seen` looked at the disk. */
function placerLookingFirst(seen: (moves: Moves) => void): Placer {
  return async (root, moves) => {
    seen(moves);
    const dirs = new DataTreeDirs(root);
    for (const move of moves) placeFile(move.temp, move.target, dirs);
    return moves.map(() => undefined);
  };
}

/** A placer that places the first `upTo` moves, then fails: the batch stops there as a kill would stop it. */
function placerStoppingAfter(upTo: number): Placer {
  return async (root, moves) => {
    const dirs = new DataTreeDirs(root);
    for (const move of moves.slice(0, upTo)) placeFile(move.temp, move.target, dirs);
    throw new Error(`stopped after ${upTo} placements`);
  };
}

function pendingIntents(w: { catalog: OpenedArchive["catalog"]; disk: OpenedArchive["disks"][number] }) {
  const rows = w.catalog.sqlite.query(`SELECT changes FROM ${w.disk.alias}.intents ORDER BY id`).all() as { changes: string }[];
  return rows.flatMap((row) => decodeIntents(row.changes));
}

describe("disk writer protocol", () => {
  test("TestIntentsBeforePlacement: when the first file is placed, the batch's intents are committed naming every temp, and no target exists yet", async () => {
    const opened = await openDisk();
    let atPlacement: { intents: number; tempsThere: boolean; targetsThere: number } | undefined;
    const writer = new DiskWriter(opened.catalog, opened.disk, {
      placer: placerLookingFirst((moves) => {
        const intents = pendingIntents(opened);
        atPlacement = {
          intents: intents.filter((intent, i) => intent.op === "place" && intent.tempName === moves[i].temp.split("/").pop()).length,
          tempsThere: moves.every((move) => existsSync(move.temp)),
          targetsThere: moves.filter((move) => existsSync(move.target)).length,
        };
      }),
    });
    const batch = many(writer, 70, "d");
    const outcomes = await writer.commit(batch);
    expect(atPlacement).toEqual({ intents: 70, tempsThere: true, targetsThere: 0 });
    expect(outcomes.every((outcome) => outcome.ok)).toBe(true);
    // After the commit: the intents are gone, the rows are there, the temps are in place.
    expect(pendingIntents(opened)).toEqual([]);
    expect(archivedPaths(opened.catalog).length).toBe(70);
    expect(readFileSync(opened.disk.layout.dataPath("/src/d/f069"), "utf8")).toBe("content of /src/d/f069");
    expect(readdirSync(opened.disk.layout.tmp)).toEqual([]);
  });

  test.each([
    ["before any placement", 0],
    ["half way through the placements", 30],
    ["after every placement, before the transaction", 70],
  ])("TestRecoveryOfHalfDoneBatch: a batch stopped %s is settled from the file system: what was done is recorded, the rest dropped with its temps", async (_when, placed) => {
    const opened = await openDisk();
    const { catalog, disk } = opened;
    // What earlier runs archived.
    const first = new DiskWriter(catalog, disk);
    const before = [copied(first, "/src/old"), copied(first, "/src/doomed"), copied(first, "/src/kept")];
    expect((await first.commit(before)).every((outcome) => outcome.ok)).toBe(true);

    // This run: a rename (done at once, before the placements), 70 copies (stopped after `placed`), a deletion (never reached).
    const writer = new DiskWriter(catalog, disk, { placer: placerStoppingAfter(placed) });
    const renamed = { ...(before[0] as { record: FileRecord }).record, path: "/src/new" };
    const batch: DiskChange[] = [{ op: "rename", fromPath: "/src/old", record: renamed }, ...many(writer, 70, "d"), { op: "delete", path: "/src/doomed" }];
    await expect(writer.commit(batch)).rejects.toThrow(`stopped after ${placed} placements`);
    expect(pendingIntents(opened)).toHaveLength(72);
    expect(archivedRow(catalog, "/src/new")).toBeUndefined();

    expect(recoverDisk(catalog, disk)).toBe(72);
    expect(pendingIntents(opened)).toEqual([]);
    expect(readdirSync(disk.layout.tmp)).toEqual([]);
    const hostPaths = archivedPaths(catalog);
    const placedPaths = Array.from({ length: placed }, (_, i) => `/src/d/f${String(i).padStart(3, "0")}`);
    expect(hostPaths).toEqual(["/src/doomed", "/src/kept", "/src/new", ...placedPaths].sort());
    expect(writer.entry("/src/old")).toBeNull();
    expect(writer.entry("/src/new")?.hash).toBe(renamed.hash);
    expect(readFileSync(disk.layout.dataPath("/src/new"), "utf8")).toBe("content of /src/old");

    // The disk agrees with its catalog, and a second recovery finds nothing left.
    archive!.close();
    archive = undefined;
    const { onFileSystem, inCatalog } = diskContents(disk.root);
    expect(onFileSystem).toEqual(inCatalog);
    expect(inCatalog).toEqual(hostPaths);
    archive = await openArchive(opened.settings, { write: true });
    expect(recoverDisk(archive.catalog, archive.disks[0])).toBe(0);
  });

  test("TestRecoveryAtNextOpen: the next writing command's open settles a half-done batch once; recovery afterwards finds nothing", async () => {
    const opened = await openDisk();
    const writer = new DiskWriter(opened.catalog, opened.disk, { placer: placerStoppingAfter(40) });
    await expect(writer.commit(many(writer, 80, "d"))).rejects.toThrow();
    // The next command's open settles the batch (as any writing command does), and recovery afterwards finds nothing.
    archive!.close();
    archive = await openArchive(opened.settings, { write: true });
    expect(archivedPaths(archive.catalog).length).toBe(40);
    expect(recoverDisk(archive.catalog, archive.disks[0])).toBe(0);
    expect(archivedPaths(archive.catalog).length).toBe(40);
  });

  test("TestLinkWhoseSourcesAreGone: a hardlink none of whose named sources exists any more is reported for replanning, and changes nothing", async () => {
    const opened = await openDisk();
    const writer = new DiskWriter(opened.catalog, opened.disk);
    const record: FileRecord = { path: "/src/dup", kind: "file", size: 5, mtimeMs: 1, mtimeNsec: null, mode: 0o100644, dev: 1, ino: 1, hash: `sha1:${"9".repeat(40)}`, linkTarget: null };
    const [outcome] = await writer.commit([{ op: "link", record, from: ["/src/was-here"] }]);
    expect(outcome).toMatchObject({ ok: false, replan: true });
    expect(existsSync(opened.disk.layout.dataPath("/src/dup"))).toBe(false);
    expect(archivedRow(opened.catalog, "/src/dup")).toBeUndefined();
    expect(readdirSync(opened.disk.layout.tmp)).toEqual([]);
    expect(pendingIntents(opened)).toEqual([]);
  });

  test("TestLinkToHolder: a hardlink is made to the first named source that exists, one inode with it", async () => {
    const opened = await openDisk();
    const writer = new DiskWriter(opened.catalog, opened.disk);
    const original = copied(writer, "/src/original", "same bytes") as { record: FileRecord };
    expect((await writer.commit([original as DiskChange]))[0].ok).toBe(true);
    const [outcome] = await writer.commit([{ op: "link", record: { ...original.record, path: "/src/dup" }, from: ["/src/gone-since", "/src/original"] }]);
    expect(outcome.ok).toBe(true);
    expect(lstatSync(opened.disk.layout.dataPath("/src/dup")).ino).toBe(lstatSync(opened.disk.layout.dataPath("/src/original")).ino);
    expect(archivedPaths(opened.catalog)).toEqual(["/src/dup", "/src/original"]);
    expect(readdirSync(opened.disk.layout.tmp)).toEqual([]);
  });

  test("TestSecondSymlinkNameNotFromOlderSymlink: a second name of a source symlink is linked only to a name holding the same target on this disk, not to an older symlink still there (its change queued)", async () => {
    const opened = await openDisk();
    const writer = new DiskWriter(opened.catalog, opened.disk);
    const symlink = (path: string, target: string, ino: number): FileRecord => ({
      path, kind: "symlink", size: target.length, mtimeMs: 1, mtimeNsec: null, mode: 0o120777, dev: 5, ino, hash: hashLinkTarget("sha1", target), linkTarget: target,
    });
    expect((await writer.commit([{ op: "symlink", record: symlink("/src/q", "old", 6) }]))[0].ok).toBe(true);
    // The host catalog already says /src/q is the source symlink's other name (ln -sfn new p; ln -f p q), as it does when q's change waits in this copy's queue.
    opened.catalog.sqlite.query("UPDATE main.files SET ino = 5, link_target = 'new', hash = ? WHERE path = '/src/q'").run(hashLinkTarget("sha1", "new"));
    const p = symlink("/src/p", "new", 5);
    const [outcome] = await writer.commit([{ op: "symlink", record: p, from: writer.symlinkNamesOf(p) }]);
    expect(outcome.ok).toBe(true);
    expect(readlinkSync(opened.disk.layout.dataPath("/src/p"))).toBe("new");
    expect(readlinkSync(opened.disk.layout.dataPath("/src/q"))).toBe("old");
  });

  test("TestRenameOfMissingSourceNotDone: a rename whose old path the disk does not hold is reported not done, and changes nothing", async () => {
    const opened = await openDisk();
    const writer = new DiskWriter(opened.catalog, opened.disk);
    const kept = copied(writer, "/src/kept");
    expect((await writer.commit([kept]))[0].ok).toBe(true);
    const record: FileRecord = { ...(kept as { record: FileRecord }).record, path: "/src/to" };
    const [outcome] = await writer.commit([{ op: "rename", fromPath: "/src/from", record }]);
    // Reported for the planner, which plans the file again (its data copied); the writer decides nothing.
    expect(outcome).toMatchObject({ ok: false, replan: true });
    expect(outcome.error).toContain("/src/from");
    expect(archivedRow(opened.catalog, "/src/to")).toBeUndefined();
    expect(existsSync(opened.disk.layout.dataPath("/src/to"))).toBe(false);
    expect(writer.entry("/src/kept")).not.toBeNull();
    expect(pendingIntents(opened)).toEqual([]);
  });
});
