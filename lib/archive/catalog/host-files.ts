import type { Database, Statement } from "bun:sqlite";
import { DeferredQueue } from "./deferred-actions-table.ts";
import type { ArchiveCatalog } from "./archive-catalog.ts";
import type { FileRecord } from "./records.ts";

/** A change of the archive carried out now on one copy of a disk (as its intent says it). */
export interface MadeChange {
  readonly op: "place" | "rename" | "delete";
  readonly path: string;
  readonly fromPath?: string;
  /** What `path` holds afterwards (every op but delete). */
  readonly record?: FileRecord;
}

/** A change of the archive for a disk no copy of which is written now: every copy gets it from its queue. */
export type DeferredChange =
  /** A hardlink to content the disk holds. */
  | { readonly op: "link"; readonly diskId: string; readonly record: FileRecord }
  /** New data or a symlink, fetched when the copy's queue gets there. */
  | { readonly op: "copy"; readonly diskId: string; readonly record: FileRecord }
  | { readonly op: "rename"; readonly diskId: string; readonly fromPath: string; readonly record: FileRecord }
  | { readonly op: "delete"; readonly diskId: string; readonly path: string };

/**
 * The host catalog's `files` rows as they are written (one per archived
 * path, naming the disk that holds it; FilesTable reads them) and the twin
 * queues that go with them: the one module that writes both for a change
 * of the archive, whether a disk writer made it now
 * (`made`, inside its commit's transaction) or it waits for a disk that is
 * not written (`deferred`). So the host catalog always tells the archive as
 * it will be once every queue is applied.
 */
export class HostFiles {
  readonly #upsert: Statement;
  readonly #delete: Statement;
  readonly #setInode: Statement;
  #queue: DeferredQueue | undefined;
  readonly #catalog: ArchiveCatalog | undefined;

  /** `catalog`: needed to queue changes for other copies (made, deferred); reads and plain row writes need only the database. */
  constructor(db: Database, catalog?: ArchiveCatalog) {
    this.#catalog = catalog;
    this.#upsert = db.prepare(
      `INSERT INTO main.files (path, kind, size, mtime_ms, mtime_nsec, mode, dev, ino, hash, link_target, disk_id, archived_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(path) DO UPDATE SET kind = excluded.kind, size = excluded.size, mtime_ms = excluded.mtime_ms, mtime_nsec = excluded.mtime_nsec,
         mode = excluded.mode, dev = excluded.dev, ino = excluded.ino, hash = excluded.hash,
         link_target = excluded.link_target, disk_id = excluded.disk_id, archived_at = excluded.archived_at`,
    );
    this.#delete = db.prepare("DELETE FROM main.files WHERE path = ?");
    this.#setInode = db.prepare("UPDATE main.files SET dev = ?, ino = ? WHERE path = ?");
  }

  get #deferredQueue(): DeferredQueue {
    if (!this.#catalog) throw new Error("HostFiles: queuing changes needs the catalog");
    this.#queue ??= new DeferredQueue(this.#catalog);
    return this.#queue;
  }

  /** Records `r` as held by disk `diskId`, replacing what the path held before. */
  upsert(r: FileRecord, diskId: string, now: number): void {
    this.#upsert.run(r.path, r.kind, r.size, r.mtimeMs, r.mtimeNsec ?? null, r.mode, r.dev, r.ino, r.hash, r.linkTarget, diskId, now);
  }

  delete(path: string): void {
    this.#delete.run(path);
  }

  /** The source device and inode of an unchanged path, found anew (see InodeRefresh). */
  setInode(path: string, dev: number, ino: number): void {
    this.#setInode.run(dev, ino, path);
  }

  /**
   * A change carried out now on copy `copyId` of disk `diskId`: the host's
   * rows, the old copy of a path that lived on another disk (queued for
   * deletion there), and the same change queued for the disk's other copies.
   */
  made(change: MadeChange, diskId: string, copyId: string, now: number): void {
    const queue = this.#deferredQueue;
    if (change.op === "delete" || change.op === "rename") this.delete(change.op === "delete" ? change.path : change.fromPath!);
    if (change.op !== "delete") {
      queue.evictElsewhere(change.record!.path, diskId);
      this.upsert(change.record!, diskId, now);
    }
    // The twin that is away gets the same change when it is next mounted.
    if (change.op === "place") queue.queue(diskId, { op: change.record!.kind === "symlink" ? "symlink" : "copy", path: change.path, record: change.record }, copyId);
    else queue.queue(diskId, { op: change.op, path: change.path, fromPath: change.fromPath, record: change.record }, copyId);
  }

  /** A change for a disk nobody writes now: the host's rows as they will be, and the change queued for every copy. */
  deferred(change: DeferredChange, now: number): void {
    const queue = this.#deferredQueue;
    if (change.op === "delete") {
      this.delete(change.path);
      queue.queue(change.diskId, { op: "delete", path: change.path });
      return;
    }
    if (change.op === "rename") this.delete(change.fromPath);
    const r = change.record;
    queue.evictElsewhere(r.path, change.diskId);
    this.upsert(r, change.diskId, now);
    queue.queue(
      change.diskId,
      change.op === "rename"
        ? { op: "rename", path: r.path, fromPath: change.fromPath, record: r }
        : change.op === "copy"
          ? { op: r.kind === "symlink" ? "symlink" : "copy", path: r.path, record: r }
          : { op: "link", path: r.path, record: r },
    );
  }
}
