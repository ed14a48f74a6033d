import type { MountedDisk } from "../disk/mounted-disk.ts";
import type { Statement } from "bun:sqlite";
import { rmSync } from "node:fs";
import type { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { contentKey, ContentHolders, type Content, type Held } from "../catalog/content-holders.ts";
import { HostFiles } from "../catalog/host-files.ts";
import type { FileRecord } from "../catalog/records.ts";
import { DeferredQueue } from "../catalog/deferred-actions-table.ts";
import { contentsToLink, type ChangeOutcome, type ChangeWriter, type DiskChange, type DiskWriter } from "../disk/disk-writer.ts";
import type { SpaceBudget } from "../disk/space-budget.ts";

/** A change that goes to a disk nobody writes now: recorded in the host catalog and queued for its copies. */
type DeferredChange =
  | { readonly op: "link"; readonly diskId: string; readonly record: FileRecord; readonly tempName?: string }
  /** New data or a symlink for a path the writing copy's queue still changes: fetched when that queue gets there. */
  | { readonly op: "copy"; readonly diskId: string; readonly record: FileRecord; readonly tempName?: string }
  | { readonly op: "rename"; readonly diskId: string; readonly fromPath: string; readonly record: FileRecord }
  | { readonly op: "delete"; readonly diskId: string; readonly path: string };

/**
 * A run's writer over every disk of the archive. Each change goes where the
 * data is: new data to the open disk the space budget chose (spanning), a
 * rename or deletion to the disk that holds the path, content some disk
 * already holds to a hardlink there. Disks mounted and writable now get the
 * change at once through their DiskWriter; every other disk (offline, or a
 * copy still catching up) gets it as a deferred action, recorded in one
 * transaction with the host catalog rows, so the host catalog always tells
 * the archive as it will be once every queue is applied. A disk whose
 * mounted copy is behind (its queue waits for data only the copy that is
 * away holds) is written at once too, except on the paths that queue still
 * changes: a change there is queued behind it, for that copy as well, so
 * every copy's changes of one path stay in order.
 */
export class ArchiveWriter implements ChangeWriter {
  readonly #catalog: ArchiveCatalog;
  readonly #space: SpaceBudget;
  /** One writer per disk mounted and caught up (its first such copy). */
  readonly #writers: Map<string, DiskWriter>;
  readonly #queue: DeferredQueue;
  readonly #hostHolders: ContentHolders<HostHolder>;
  readonly #hostRow: Statement;
  readonly #hostFiles: HostFiles;
  readonly #lastQueuedAtStart: number;
  /** For a writer whose copy is behind: the paths its queue still changes (grows as changes are queued behind). */
  readonly #waiting = new Map<DiskWriter, Set<string>>();

  constructor(catalog: ArchiveCatalog, writers: readonly DiskWriter[], space: SpaceBudget) {
    this.#catalog = catalog;
    this.#space = space;
    this.#writers = new Map(writers.map((writer) => [writer.disk.label.diskId, writer]));
    this.#queue = new DeferredQueue(catalog);
    for (const writer of writers) {
      if (this.#queue.count(writer.disk.label.copyId) > 0) this.#waiting.set(writer, this.#queue.pathsOf(writer.disk.label.copyId));
    }
    const db = catalog.sqlite;
    this.#hostHolders = new ContentHolders(db, {
      from: "main.files",
      columns: ["path", "disk_id"],
      // IN, not a JOIN: the same plan on paper, but the JOIN costs 15 µs a call here against 1 µs.
      where: "disk_id IN (SELECT id FROM main.disks WHERE state != 'retired')",
      toHolder: (values) => ({ path: values[0] as string, diskId: values[1] as string }),
    });
    this.#hostRow = db.prepare("SELECT disk_id AS diskId, hash FROM main.files WHERE path = ?");
    this.#hostFiles = new HostFiles(db);
    this.#lastQueuedAtStart = this.#lastQueuedId();
  }

  #lastQueuedId(): number {
    const row = this.#catalog.sqlite.query("SELECT seq FROM main.sqlite_sequence WHERE name = 'deferred_actions'").get() as { seq: number } | null;
    return row?.seq ?? 0;
  }

  /** Deferred actions queued since this writer was made, one per copy (offline disks, twins away, old copies to delete). */
  queuedSinceStart(): number {
    return this.#lastQueuedId() - this.#lastQueuedAtStart;
  }

  /** The writer of the disk new data goes to now. */
  get target(): DiskWriter {
    return this.#writers.get(this.#space.current.label.diskId)!;
  }

  /**
   * Paths holding this content ("alike": whose files show its mtime and mode
   * too; "any": all, alike first): on the target disk, else anywhere in the
   * archive (dedup then plans a link).
   */
  holdersOf(content: Content, which: "alike" | "any"): string[] {
    const local = this.target.holdersOf(content, which);
    if (local.length > 0) return local;
    return this.#hostHolders
      .of(content)
      .filter((held) => which === "any" || held.alike)
      .map((held) => held.holder.path);
  }

  /** A temp file for a copy, on the disk its bytes were just reserved on. */
  newTemp(disk: MountedDisk): { name: string; path: string } {
    const writer = this.#writers.get(disk.label.diskId)!;
    const name = writer.newTempName();
    return { name, path: writer.tempPath(name) };
  }

  async commit(changes: readonly DiskChange[]): Promise<ChangeOutcome[]> {
    const outcomes: ChangeOutcome[] = new Array(changes.length);
    const direct = new Map<DiskWriter, { index: number; change: DiskChange }[]>();
    const deferred: { index: number; change: DiskChange; deferred: DeferredChange }[] = [];
    const toWriter = (writer: DiskWriter, index: number, change: DiskChange) => {
      const list = direct.get(writer) ?? [];
      list.push({ index, change });
      direct.set(writer, list);
    };
    const holders = new BatchHolders(contentsToLink(changes), this.#hostHolders);
    // The usual batch (one disk mounted, all of it new content or symlinks)
    // goes as a whole: #route would send each change to the one writer unchanged.
    if (this.#writers.size === 1 && this.#waiting.size === 0 && holders.noneKnown() && changes.every((change) => change.op === "place" || change.op === "symlink")) {
      const [writer] = this.#writers.values();
      const results = await writer.commit(changes, { holders: holders.on(writer) });
      if (results.some((result) => result.noRoom)) this.#space.noRoomOn(writer.disk);
      return results;
    }
    // Paths this batch changes: a hardlink may only point at content that is
    // still there at its place in the queue (the queue is applied in order).
    const touched = new Set<string>();
    changes.forEach((change, index) => {
      const route = this.#behindWaiting(this.#route(change, touched, holders));
      touched.add(change.op === "delete" ? change.path : change.record.path);
      if (change.op === "rename") touched.add(change.fromPath);
      if (route === "needs-copy") outcomes[index] = { change, ok: false, needsCopy: true };
      else if ("deferred" in route) deferred.push({ index, change, deferred: route.deferred });
      else toWriter(route.writer, index, route.change);
    });
    if (deferred.length > 0) {
      this.#catalog.transaction(() => {
        const now = Date.now();
        for (const item of deferred) this.#recordDeferred(item.deferred, now);
      });
      for (const item of deferred) {
        const tempName = item.deferred.op === "link" || item.deferred.op === "copy" ? item.deferred.tempName : undefined;
        // The copy turned out to be content another disk holds, or waits behind a queue: its temp is not needed.
        if (tempName && item.change.op === "place") rmSync(this.#writerOfTemp(tempName)?.tempPath(tempName) ?? "", { force: true });
        outcomes[item.index] = { change: item.change, ok: true, storedAsLink: item.deferred.op === "link" };
      }
    }
    for (const [writer, list] of direct) {
      const results = await writer.commit(
        list.map((item) => item.change),
        { holders: holders.on(writer) },
      );
      // Its catalog could not grow: nothing new is started on that disk any more.
      if (results.some((result) => result.noRoom)) this.#space.noRoomOn(writer.disk);
      list.forEach((item, i) => {
        outcomes[item.index] = { ...results[i], change: changes[item.index] };
      });
    }
    return outcomes;
  }

  #route(
    change: DiskChange,
    touched: ReadonlySet<string>,
    holders: BatchHolders,
  ): { writer: DiskWriter; change: DiskChange } | { deferred: DeferredChange } | "needs-copy" {
    switch (change.op) {
      case "place": {
        const writer = this.#writerOfTemp(change.tempName) ?? this.target;
        const { record } = change;
        // A copy made is linked only to a file showing the same mtime and mode, else kept (see Content).
        if (record.kind === "file" && !holders.heldOn(writer, record, "alike")) {
          const elsewhere = this.#linkElsewhere(record, writer, touched, holders, "alike");
          if (elsewhere && "writer" in elsewhere) return elsewhere;
          if (elsewhere) return { deferred: { op: "link", diskId: elsewhere.deferred.diskId, record, tempName: change.tempName } };
        }
        return { writer, change };
      }
      case "symlink":
        return { writer: this.target, change };
      case "link": {
        if (holders.heldOn(this.target, change.record, "any")) return { writer: this.target, change };
        return this.#linkElsewhere(change.record, this.target, touched, holders, "any") ?? "needs-copy";
      }
      case "rename": {
        const from = this.#hostRow.get(change.fromPath) as { diskId: string; hash: string } | null;
        if (!from) return "needs-copy";
        const writer = this.#writers.get(from.diskId);
        if (writer) return { writer, change };
        return { deferred: { op: "rename", diskId: from.diskId, fromPath: change.fromPath, record: change.record } };
      }
      case "delete": {
        const row = this.#hostRow.get(change.path) as { diskId: string } | null;
        if (!row) return { writer: this.target, change };
        const writer = this.#writers.get(row.diskId);
        if (writer) return { writer, change };
        return { deferred: { op: "delete", diskId: row.diskId, path: change.path } };
      }
    }
  }

  /** A change routed to a copy that is behind, on a path its queue still changes, goes into that queue instead. */
  #behindWaiting(
    route: { writer: DiskWriter; change: DiskChange } | { deferred: DeferredChange } | "needs-copy",
  ): { writer: DiskWriter; change: DiskChange } | { deferred: DeferredChange } | "needs-copy" {
    if (typeof route === "string" || !("writer" in route)) return route;
    const waiting = this.#waiting.get(route.writer);
    if (!waiting) return route;
    const { change } = route;
    const paths = change.op === "delete" ? [change.path] : change.op === "rename" ? [change.record.path, change.fromPath] : [change.record.path];
    if (!paths.some((path) => waiting.has(path))) return route;
    for (const path of paths) waiting.add(path);
    const diskId = route.writer.disk.label.diskId;
    switch (change.op) {
      case "delete":
        return { deferred: { op: "delete", diskId, path: change.path } };
      case "rename":
        return { deferred: { op: "rename", diskId, fromPath: change.fromPath, record: change.record } };
      case "link":
        return { deferred: { op: "link", diskId, record: change.record } };
      case "place":
        return { deferred: { op: "copy", diskId, record: change.record, tempName: change.tempName } };
      case "symlink":
        return { deferred: { op: "copy", diskId, record: change.record } };
    }
  }

  /** Content held by another disk: a hardlink there (now if it is mounted, else deferred); no second copy of the data. */
  #linkElsewhere(
    record: FileRecord,
    except: DiskWriter,
    touched: ReadonlySet<string>,
    holders: BatchHolders,
    which: "alike" | "any",
  ): { writer: DiskWriter; change: DiskChange } | { deferred: DeferredChange } | undefined {
    const holder = holders.inArchive(record, which).find((row) => !touched.has(row.path));
    if (!holder || holder.diskId === except.disk.label.diskId) return undefined;
    const writer = this.#writers.get(holder.diskId);
    if (writer) return holders.heldOn(writer, record, which) ? { writer, change: { op: "link", record } } : undefined;
    return { deferred: { op: "link", diskId: holder.diskId, record } };
  }

  /** Drops changes that will not be committed (the run stopped for lack of space): the temps of their copies go. */
  discard(changes: readonly DiskChange[]): void {
    for (const change of changes) {
      if (change.op !== "place") continue;
      const writer = this.#writerOfTemp(change.tempName);
      if (writer) rmSync(writer.tempPath(change.tempName), { force: true });
    }
  }

  /** The disk a copy's temp file was made on (from its name). */
  diskOfTemp(tempName: string): MountedDisk | undefined {
    return this.#writerOfTemp(tempName)?.disk;
  }

  #writerOfTemp(tempName: string): DiskWriter | undefined {
    for (const writer of this.#writers.values()) if (writer.ownsTemp(tempName)) return writer;
    return undefined;
  }

  #recordDeferred(change: DeferredChange, now: number): void {
    if (change.op === "delete") {
      this.#hostFiles.delete(change.path);
      this.#queue.queue(change.diskId, { op: "delete", path: change.path });
      return;
    }
    if (change.op === "rename") this.#hostFiles.delete(change.fromPath);
    const r = change.record;
    this.#queue.evictElsewhere(r.path, change.diskId);
    this.#hostFiles.upsert(r, change.diskId, now);
    this.#queue.queue(
      change.diskId,
      change.op === "rename"
        ? { op: "rename", path: r.path, fromPath: change.fromPath, record: r }
        : change.op === "copy"
          ? { op: r.kind === "symlink" ? "symlink" : "copy", path: r.path, record: r }
          : { op: "link", path: r.path, record: r },
    );
  }
}

interface HostHolder {
  readonly path: string;
  readonly diskId: string;
}

/**
 * Who holds each content of one batch, looked up once per batch (a lookup
 * per file was a tenth of a small-file run): per mounted disk from its
 * catalog, and across the archive from the host catalog. Valid for the
 * whole batch: nothing is recorded before the batch's writers commit.
 */
class BatchHolders {
  readonly #contents: readonly Content[];
  readonly #host: ContentHolders<HostHolder>;
  readonly #onDisk = new Map<DiskWriter, Map<string, Held<string>[]>>();
  #inArchive: Map<string, Held<HostHolder>[]> | undefined;

  constructor(contents: readonly Content[], host: ContentHolders<HostHolder>) {
    this.#contents = contents;
    this.#host = host;
  }

  /**
   * The batch's holders on one disk (what its DiskWriter links to), asked
   * only for contents the archive holds somewhere: most of a batch is new
   * content, and a disk holds nothing the host catalog does not know (at
   * worst a missed holder costs a second copy, never a wrong link).
   */
  on(writer: DiskWriter): Map<string, Held<string>[]> {
    let found = this.#onDisk.get(writer);
    if (!found) {
      const known = this.#contents.filter((content) => this.inArchive(content, "any").length > 0);
      found = known.length > 0 ? writer.holdersOfEach(known) : new Map();
      this.#onDisk.set(writer, found);
    }
    return found;
  }

  /** Whether no content of the batch is held anywhere in the archive. */
  noneKnown(): boolean {
    this.#inArchive ??= this.#host.lookup(this.#contents);
    return this.#inArchive.size === 0;
  }

  /** Whether the disk holds the content ("alike": in a file showing its mtime and mode too). */
  heldOn(writer: DiskWriter, content: Content, which: "alike" | "any"): boolean {
    const held = this.on(writer);
    // Most batches are all new content: nothing to look up, no key to build.
    if (held.size === 0) return false;
    return held.get(contentKey(content))?.some((item) => which === "any" || item.alike) ?? false;
  }

  /** Paths anywhere in the archive (disks not retired) holding the content, with their disk ("alike" first, or only). */
  inArchive(content: Content, which: "alike" | "any"): HostHolder[] {
    this.#inArchive ??= this.#host.lookup(this.#contents);
    if (this.#inArchive.size === 0) return [];
    return (this.#inArchive.get(contentKey(content)) ?? []).filter((item) => which === "any" || item.alike).map((item) => item.holder);
  }
}
