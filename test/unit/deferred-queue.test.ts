import { afterEach, describe, expect, test } from "bun:test";
import { DeferredQueue, listDeferred, type DeferredAction } from "../../lib/archive/catalog/deferred-actions-table.ts";
import type { FileRecord } from "../../lib/archive/catalog/records.ts";
import { hostCatalog, type HostCatalogFixture } from "../helpers/host-catalog.ts";

/**
 * The deferred queue on a real host catalog (a migrated SQLite file, not a
 * mock): what each copy of a disk is queued, in what order, and what the
 * queue answers about it.
 */
let host: HostCatalogFixture;
afterEach(() => host?.close());

function record(path: string, hash = `sha1:${"1".repeat(40)}`, size = 10): FileRecord {
  return { path, kind: "file", size, mtimeMs: 1_700_000_000_000, mtimeNsec: 0, mode: 0o100644, dev: 1, ino: 1, hash, linkTarget: null };
}

const ops = (queue: DeferredQueue, copyId: string) => queue.forCopy(copyId).map((a) => [a.op, a.fromPath ?? null, a.path]);

describe("deferred queue", () => {
  test("TestQueueForOtherCopies: a change made on one copy is queued for each other copy of the disk, not for it", () => {
    host = hostCatalog();
    const { diskId, copyIds } = host.addDisk("C", 3);
    const queue = new DeferredQueue(host.catalog);
    queue.queue(diskId, { op: "rename", fromPath: "/s/a", path: "/s/b", record: record("/s/b") }, copyIds[0]);
    expect(queue.count(copyIds[0])).toBe(0);
    for (const copyId of copyIds.slice(1)) expect(ops(queue, copyId)).toEqual([["rename", "/s/a", "/s/b"]]);
  });

  test("TestQueueForOfflineDisk: a change to a disk none of whose copies is mounted is queued for every copy", () => {
    host = hostCatalog();
    const { diskId, copyIds } = host.addDisk("C", 2);
    const queue = new DeferredQueue(host.catalog);
    queue.queue(diskId, { op: "delete", path: "/s/gone" });
    for (const copyId of copyIds) expect(ops(queue, copyId)).toEqual([["delete", null, "/s/gone"]]);
  });

  test("TestSingleCopyQueuesNothing: a change made on the only copy of a disk has nobody to be queued for", () => {
    host = hostCatalog();
    const { diskId, copyIds } = host.addDisk("A", 1);
    const queue = new DeferredQueue(host.catalog);
    queue.queue(diskId, { op: "copy", path: "/s/new", record: record("/s/new") }, copyIds[0]);
    expect(queue.count(copyIds[0])).toBe(0);
    expect(listDeferred(host.catalog)).toEqual([]);
  });

  test("TestQueueOrder: a copy's actions come back oldest first, records whole, whatever their kinds and paths", () => {
    host = hostCatalog();
    const { diskId, copyIds } = host.addDisk("C", 2);
    const queue = new DeferredQueue(host.catalog);
    const actions: DeferredAction[] = [
      { op: "copy", path: "/s/z", record: record("/s/z") },
      { op: "rename", fromPath: "/s/z", path: "/s/a", record: record("/s/a") },
      { op: "link", path: "/s/m", record: record("/s/m") },
      { op: "symlink", path: "/s/l", record: { ...record("/s/l"), kind: "symlink", linkTarget: "a" } },
      { op: "delete", path: "/s/a" },
    ];
    for (const action of actions) queue.queue(diskId, action, copyIds[0]);
    const queued = queue.forCopy(copyIds[1]);
    expect(queued.map(({ op, path, fromPath, record }) => ({ op, path, ...(fromPath ? { fromPath } : {}), ...(record ? { record } : {}) }))).toEqual(actions);
    expect(queued.every((a) => a.copyId === copyIds[1] && a.lastError === null)).toBe(true);
    expect(queued.map((a) => a.id)).toEqual([...queued.map((a) => a.id)].sort((x, y) => x - y));
  });

  test("TestQueueForOneCopy: a twin's catch-up goes to that copy alone", () => {
    host = hostCatalog();
    const { copyIds } = host.addDisk("C", 2);
    const queue = new DeferredQueue(host.catalog);
    queue.queueForCopy(copyIds[1], { op: "copy", path: "/s/a", record: record("/s/a") });
    expect(queue.count(copyIds[0])).toBe(0);
    expect(ops(queue, copyIds[1])).toEqual([["copy", null, "/s/a"]]);
  });

  test("TestEvictElsewhere: a path recorded on another disk than the one that held it is queued for deletion on the old disk's copies", () => {
    host = hostCatalog();
    const a = host.addDisk("A", 2);
    const b = host.addDisk("B", 1);
    host.archive(record("/s/moved"), a.diskId);
    const queue = new DeferredQueue(host.catalog);
    queue.evictElsewhere("/s/moved", a.diskId);
    expect(listDeferred(host.catalog)).toEqual([]);
    queue.evictElsewhere("/s/moved", b.diskId);
    for (const copyId of a.copyIds) expect(ops(queue, copyId)).toEqual([["delete", null, "/s/moved"]]);
    expect(queue.count(b.copyIds[0])).toBe(0);
    // A path the archive does not hold yet has no old copy anywhere.
    queue.evictElsewhere("/s/new", b.diskId);
    expect(listDeferred(host.catalog)).toHaveLength(2);
  });

  test("TestEvictOnSingleDisk: an archive of one disk has nothing to evict elsewhere", () => {
    host = hostCatalog();
    const { diskId } = host.addDisk("A", 2);
    host.archive(record("/s/p"), diskId);
    // Even told of a disk it does not know, it queues nothing: no other disk can hold the path.
    new DeferredQueue(host.catalog).evictElsewhere("/s/p", "some-other-disk");
    expect(listDeferred(host.catalog)).toEqual([]);
  });

  test("TestWaitsFor: a copy waits for a path its queue changes, as target or as the source of a rename", () => {
    host = hostCatalog();
    const { diskId, copyIds } = host.addDisk("C", 2);
    const queue = new DeferredQueue(host.catalog);
    queue.queue(diskId, { op: "rename", fromPath: "/s/old", path: "/s/new", record: record("/s/new") }, copyIds[0]);
    expect(queue.waitsFor(copyIds[1], "/s/old")).toBe(true);
    expect(queue.waitsFor(copyIds[1], "/s/new")).toBe(true);
    expect(queue.waitsFor(copyIds[1], "/s/other")).toBe(false);
    expect(queue.waitsFor(copyIds[0], "/s/new")).toBe(false);
    expect([...queue.pathsOf(copyIds[1])].sort()).toEqual(["/s/new", "/s/old"]);
  });

  test("TestRemoveAndError: an applied action is removed; a failed one keeps its place with its error", () => {
    host = hostCatalog();
    const { diskId, copyIds } = host.addDisk("C", 2);
    const queue = new DeferredQueue(host.catalog);
    queue.queue(diskId, { op: "delete", path: "/s/1" }, copyIds[0]);
    queue.queue(diskId, { op: "delete", path: "/s/2" }, copyIds[0]);
    const [first, second] = queue.forCopy(copyIds[1]);
    queue.setError(first.id, "the disk was read-only");
    queue.remove(second.id);
    expect(queue.forCopy(copyIds[1]).map((a) => [a.path, a.lastError])).toEqual([["/s/1", "the disk was read-only"]]);
  });

  test("TestHeldOnlyBy: data another copy still waits for, held by this copy under no other name, is what leaving would lose", () => {
    host = hostCatalog();
    const { diskId, copyIds } = host.addDisk("C", 2);
    const [here, away] = copyIds;
    const only = record("/s/only", `sha1:${"2".repeat(40)}`, 20);
    const twice = record("/s/twice", `sha1:${"3".repeat(40)}`, 30);
    const twiceElsewhere = record("/s/twice-too", `sha1:${"3".repeat(40)}`, 30);
    for (const r of [only, twice, twiceElsewhere]) host.archive(r, diskId);
    const queue = new DeferredQueue(host.catalog);
    // The copy that is away waits for two contents; the second it can link from a name it holds already.
    queue.queueForCopy(away, { op: "copy", path: only.path, record: only });
    queue.queueForCopy(away, { op: "copy", path: twice.path, record: twice });
    expect(queue.heldOnlyBy(here, diskId)).toEqual([{ path: "/s/only", size: 20 }]);
    // Renamed before the copy away got it: the new name is what it waits for.
    queue.queueForCopy(away, { op: "rename", fromPath: only.path, path: "/s/only-renamed", record: { ...only, path: "/s/only-renamed" } });
    host.catalog.sqlite.query("UPDATE files SET path = '/s/only-renamed' WHERE path = '/s/only'").run();
    expect(queue.heldOnlyBy(here, diskId)).toEqual([{ path: "/s/only-renamed", size: 20 }]);
    // Once it is queued for this copy too (this copy does not hold it either), leaving loses nothing of it.
    queue.queueForCopy(here, { op: "copy", path: "/s/only-renamed", record: { ...only, path: "/s/only-renamed" } });
    expect(queue.heldOnlyBy(here, diskId)).toEqual([]);
  });

  test("TestDropPathAndCopy: a path's actions dropped on every copy of its disk; a leaving copy's whole queue dropped", () => {
    host = hostCatalog();
    const c = host.addDisk("C", 3);
    const queue = new DeferredQueue(host.catalog);
    queue.queue(c.diskId, { op: "delete", path: "/s/x" });
    queue.queue(c.diskId, { op: "delete", path: "/s/y" });
    queue.dropPath(c.diskId, "/s/x");
    for (const copyId of c.copyIds) expect(ops(queue, copyId)).toEqual([["delete", null, "/s/y"]]);
    expect(queue.dropCopy(c.copyIds[2])).toBe(1);
    expect(queue.count(c.copyIds[2])).toBe(0);
    expect(queue.count(c.copyIds[0])).toBe(1);
  });

  test("TestList: every queued action, oldest first with its disk's label, or one disk's alone", () => {
    host = hostCatalog();
    const a = host.addDisk("A", 1);
    const c = host.addDisk("C", 2);
    const queue = new DeferredQueue(host.catalog);
    queue.queue(c.diskId, { op: "delete", path: "/s/1" }, c.copyIds[0]);
    queue.queue(a.diskId, { op: "delete", path: "/s/2" });
    queue.queue(c.diskId, { op: "delete", path: "/s/3" }, c.copyIds[1]);
    expect(listDeferred(host.catalog).map((x) => [x.disk, x.copyId, x.path])).toEqual([
      ["C", c.copyIds[1], "/s/1"],
      ["A", a.copyIds[0], "/s/2"],
      ["C", c.copyIds[0], "/s/3"],
    ]);
    expect(listDeferred(host.catalog, "A").map((x) => x.path)).toEqual(["/s/2"]);
    expect(listDeferred(host.catalog, "none")).toEqual([]);
  });
});
