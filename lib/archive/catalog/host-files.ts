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
 * The host catalog's `files` rows (one per archived path, naming the disk
 * that holds it; their SQL is FilesTable's) and the twin queues that go
 * with them, for a change of the archive: the one module that writes both,
 * whether a disk writer made it now
 * (`made`, inside its commit's transaction) or it waits for a disk that is
 * not written (`deferred`). So the host catalog always tells the archive as
 * it will be once every queue is applied.
 */
export class HostFiles {
  readonly #catalog: ArchiveCatalog;
  #queue: DeferredQueue | undefined;

  constructor(catalog: ArchiveCatalog) {
    this.#catalog = catalog;
  }

  get #deferredQueue(): DeferredQueue {
    this.#queue ??= new DeferredQueue(this.#catalog);
    return this.#queue;
  }

  /**
   * A change carried out now on copy `copyId` of disk `diskId`: the host's
   * rows, the old copy of a path that lived on another disk (queued for
   * deletion there), and the same change queued for the disk's other copies.
   */
  made(change: MadeChange, diskId: string, copyId: string, now: number): void {
    const queue = this.#deferredQueue;
    const files = this.#catalog.files;
    if (change.op === "delete" || change.op === "rename") files.delete(change.op === "delete" ? change.path : change.fromPath!);
    if (change.op !== "delete") {
      queue.evictElsewhere(change.record!.path, diskId);
      files.upsert(change.record!, diskId, now);
    }
    // The twin that is away gets the same change when it is next mounted.
    if (change.op === "place") queue.queue(diskId, { op: change.record!.kind === "symlink" ? "symlink" : "copy", path: change.path, record: change.record }, copyId);
    else queue.queue(diskId, { op: change.op, path: change.path, fromPath: change.fromPath, record: change.record }, copyId);
  }

  /** A change for a disk nobody writes now: the host's rows as they will be, and the change queued for every copy. */
  deferred(change: DeferredChange, now: number): void {
    const queue = this.#deferredQueue;
    const files = this.#catalog.files;
    if (change.op === "delete") {
      files.delete(change.path);
      queue.queue(change.diskId, { op: "delete", path: change.path });
      return;
    }
    if (change.op === "rename") files.delete(change.fromPath);
    const r = change.record;
    queue.evictElsewhere(r.path, change.diskId);
    files.upsert(r, change.diskId, now);
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
