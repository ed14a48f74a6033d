import { contentKey, showsAlike, type Content, type Held } from "../catalog/content-holders.ts";
import type { DeferredChange } from "../catalog/host-files.ts";
import type { FileRecord } from "../catalog/records.ts";
import type { DiskChange, LinkSource } from "../disk/disk-writer.ts";
import { hashFile, type HashAlgorithm } from "../../hashing.ts";
import type { PlannedFile } from "../stages/types.ts";

/** A path holding a content somewhere in the archive, and the disk that holds it. */
export interface ArchiveHolder {
  readonly path: string;
  readonly diskId: string;
}

/**
 * What the planner reads of the catalogs and of the run's disks. A run's
 * (see catalogView) reads the host catalog and the mounted disks' catalogs,
 * which agree with the disks between batches; a unit test hands in a small
 * fake. Lookups "of each" take a whole batch's contents at once.
 */
export interface PlannerView {
  /** The disk new data goes to now (the space budget's: it changes when a disk fills up). */
  targetDisk(): string;
  /** Whether a copy of disk `diskId` is mounted and written by this run. */
  writtenNow(diskId: string): boolean;
  /** For a disk whose written copy is behind (its queue waits for data only a copy that is away holds): the paths its queue still changes. */
  waitingPaths(diskId: string): ReadonlySet<string> | undefined;
  /** The disk that holds an archived path and its content (host catalog); null when it is not archived. */
  locate(path: string): { readonly diskId: string; readonly hash: string } | null;
  /** Paths on a written disk holding the content, alike first (its catalog). */
  holdersOnDisk(diskId: string, content: Content): readonly Held<string>[];
  /** The same for every content of a batch at once, by contentKey (absent: none). */
  holdersOnDiskOfEach(diskId: string, contents: readonly Content[]): ReadonlyMap<string, readonly Held<string>[]>;
  /** Paths anywhere in the archive (disks not retired) holding the content, alike first (host catalog). */
  holdersInArchive(content: Content): readonly Held<ArchiveHolder>[];
  holdersInArchiveOfEach(contents: readonly Content[]): ReadonlyMap<string, readonly Held<ArchiveHolder>[]>;
  /** Other names on a written disk of a source symlink (same inode and target), as its catalog has them. */
  symlinkNamesOn(diskId: string, record: FileRecord): readonly string[];
  /** Whether the archive may hold content of this size (cheap; false means surely not). */
  mayHoldSize(size: number): boolean;
}

/** What a run wants done with one path, as the manifest writer (or the deletions) hand it to the planner. */
export type FileChange =
  /** Data copied into `tempName` on disk `diskId` (the space budget chose it when the copy started). */
  | { readonly op: "copied"; readonly record: FileRecord; readonly tempName: string; readonly diskId: string }
  /** Content the archive held when the file was planned: a hardlink, no data copied. */
  | { readonly op: "link"; readonly record: FileRecord }
  | { readonly op: "symlink"; readonly record: FileRecord }
  | { readonly op: "rename"; readonly fromPath: string; readonly record: FileRecord }
  | { readonly op: "delete"; readonly path: string };

/** How a path ends up stored: what the run counts it as. */
export type StoredAs = "copy" | "link" | "symlink" | "rename" | "delete";

/** A copy's temp file that the placement does not need (the content turned out to be held): removed once the batch is done. */
export interface UnneededTemp {
  readonly diskId: string;
  readonly tempName: string;
}

/**
 * Where one change goes, decided once: made now on disk `diskId` by its
 * writer, deferred into that disk's queues (no copy of it is written now,
 * or the written copy's queue still changes the path), or planned again
 * (its data must be copied: what a link or rename needed is not there).
 */
export type Placement =
  | { readonly when: "now"; readonly diskId: string; readonly change: DiskChange; readonly storedAs: StoredAs; readonly unneededTemp?: UnneededTemp }
  | { readonly when: "deferred"; readonly change: DeferredChange; readonly storedAs: StoredAs; readonly unneededTemp?: UnneededTemp }
  | { readonly when: "replan"; readonly reason: string };

/**
 * The one owner of a run's placement decisions: for each path, whether its
 * data is copied at all, then which disk it goes to, as a copy, hardlink,
 * rename or symlink, now or deferred. Before any data moves, `plan` says
 * what a file needs (a copy, unless the archive holds its content); when a
 * batch is committed, `placeBatch` places every change of it from one view
 * of the catalogs as the batch begins plus the batch's own changes in
 * order. The writers carry placements out and report what they could not
 * (`replan` gives such a file its copy, through the copier and the parity
 * stage like any other).
 *
 * A hardlink shares its inode's mtime and mode, so only a holder showing
 * the same ones will do ("alike"): the same bytes under another mtime are
 * copied, and the disk stays a plain mirror, except where no copy fits
 * (`linkWhenNoRoom`, and links planned so take any holder).
 */
export class Planner {
  readonly #view: PlannerView;
  /** Paths a behind copy's queue still changes, grown as changes are queued behind them (see #behindWaiting). */
  readonly #waiting = new Map<string, Set<string>>();
  /**
   * Contents (hash and size) a hardlink could not be made to in this run: a
   * file the catalogs list is gone from the disk (deleted there, damage).
   * They are copied from then on, never linked to that file again.
   */
  readonly #unlinkable = new Set<string>();

  constructor(view: PlannerView) {
    this.#view = view;
  }

  /**
   * Before the data moves: renames stay renames, symlinks are made again,
   * content the archive already holds (on the disk new data goes to, else
   * anywhere) becomes a hardlink, everything else is copied.
   */
  plan(item: PlannedFile): PlannedFile {
    if (item.action === "rename") return item;
    if (item.kind === "symlink") return { ...item, action: "symlink" };
    if (item.hash && this.#held(asContent(item, item.hash), "alike")) return { ...item, action: "link" };
    return { ...item, action: "copy" };
  }

  /**
   * The second look at a file planned as a copy that found no room: it may
   * still be content the archive holds (a rename or a duplicate found by
   * content, whose hash was not read before because the file is small or
   * the pool's inodes are not stable), and a hardlink to that needs no
   * space. It costs one read of a file that could not be stored anyway; a
   * large file is read only when the archive holds content of its size.
   * Returns the file as a link (to any holder: its mtime or mode on the
   * disk may then be the other file's; the catalog has this file's, and
   * restore sets them), or undefined when it must be copied.
   */
  linkWhenNoRoom(item: PlannedFile, algorithm: HashAlgorithm): PlannedFile | undefined {
    if (item.kind !== "file" || !this.#view.mayHoldSize(item.size)) return undefined;
    let hash = item.hash;
    if (!hash) {
      try {
        const read = hashFile(item.path, algorithm);
        // A size that differs from the walk: the file is changing, and its content is not what the archive holds.
        if (read.size !== item.size) return undefined;
        hash = read.hash;
      } catch {
        // Unreadable now: it stays a copy that does not fit, reported as such.
        return undefined;
      }
    }
    return this.#held(asContent(item, hash), "any") ? { ...item, hash, action: "link" } : undefined;
  }

  /** A file whose placement could not be carried out: its data is copied after all (a symlink is made anew); a content a hardlink failed for is not linked again in this run. */
  replan(item: PlannedFile): PlannedFile {
    // A hardlink that could not be made (a rename's old name missing says nothing of other files of its content).
    if (item.kind === "file" && item.hash && item.action !== "rename") this.#unlinkable.add(dataKey(item.hash, item.size));
    const change = item.change === "renamed" ? "new" : item.change;
    return { ...item, change, action: item.kind === "symlink" ? "symlink" : "copy" };
  }

  /** Whether a content is held on the disk new data goes to, else anywhere in the archive. */
  #held(content: Content, which: "alike" | "any"): boolean {
    if (this.#unlinkable.has(dataKey(content.hash, content.size))) return false;
    const target = this.#view.targetDisk();
    const onTarget = this.#view.writtenNow(target) ? this.#view.holdersOnDisk(target, content) : [];
    if (onTarget.some((held) => which === "any" || held.alike)) return true;
    return this.#view.holdersInArchive(content).some((held) => which === "any" || held.alike);
  }

  /**
   * Places one batch's changes, in order. A copy is kept on the disk it was
   * made on unless that disk, or this batch, already holds its content
   * alike (a duplicate found once its hash was known: a hardlink instead),
   * or another disk does (a hardlink there, now or deferred). A planned
   * link goes to the disk new data goes to when that holds the content,
   * else to a disk that does; a rename or deletion to the disk that holds
   * the path. Hardlinks on a disk written now may take any holder as the
   * batch began, even one the batch renames or replaces: the disk writer
   * makes every link of a batch before any of its changes.
   */
  placeBatch(changes: readonly FileChange[]): Placement[] {
    const batch = new BatchState(contentsToLink(changes), this.#view);
    const placements: Placement[] = [];
    for (const change of changes) {
      const placement = this.#behindWaiting(this.#place(change, batch));
      placements.push(placement);
      if (placement.when === "now") batch.added(placement);
      batch.touched.add(change.op === "delete" ? change.path : change.record.path);
      if (change.op === "rename") batch.touched.add(change.fromPath);
    }
    return placements;
  }

  #place(change: FileChange, batch: BatchState): Placement {
    const view = this.#view;
    switch (change.op) {
      case "copied": {
        const { record, diskId } = change;
        const copy: Placement = { when: "now", diskId, change: { op: "place", record, tempName: change.tempName }, storedAs: "copy" };
        if (record.kind !== "file") return copy;
        const unneededTemp = { diskId, tempName: change.tempName };
        // A link to its content could not be made before in this run: the copy stays (or joins a copy of this batch).
        const linkable = !this.#unlinkable.has(dataKey(record.hash, record.size));
        if (linkable && batch.heldOn(diskId, record, "alike")) return { when: "now", diskId, change: { op: "link", record, from: batch.sources(diskId, record, "alike") }, storedAs: "link", unneededTemp };
        const elsewhere = linkable ? this.#linkElsewhere(record, diskId, batch, "alike") : undefined;
        if (elsewhere) return { ...elsewhere, unneededTemp };
        // Content that arrived twice in this batch (hardlinked or identical sources copied at the same time): one copy, the other a link to it.
        const inBatch = batch.sources(diskId, record, "alike").filter((source) => linkable || typeof source !== "string");
        if (inBatch.length > 0) return { when: "now", diskId, change: { op: "link", record, from: inBatch }, storedAs: "link", unneededTemp };
        return copy;
      }
      case "symlink": {
        const diskId = view.targetDisk();
        const from = batch.symlinkSources(diskId, change.record);
        return { when: "now", diskId, change: { op: "symlink", record: change.record, ...(from.length > 0 ? { from } : {}) }, storedAs: "symlink" };
      }
      case "link": {
        if (this.#unlinkable.has(dataKey(change.record.hash, change.record.size))) return { when: "replan", reason: "a file of its content is missing on the disk" };
        const target = view.targetDisk();
        if (view.writtenNow(target) && batch.heldOn(target, change.record, "any")) {
          return { when: "now", diskId: target, change: { op: "link", record: change.record, from: batch.sources(target, change.record, "any") }, storedAs: "link" };
        }
        return this.#linkElsewhere(change.record, target, batch, "any") ?? { when: "replan", reason: "no disk holds its content any more" };
      }
      case "rename": {
        const from = view.locate(change.fromPath);
        if (!from) return { when: "replan", reason: `${change.fromPath} is no longer archived` };
        if (view.writtenNow(from.diskId)) return { when: "now", diskId: from.diskId, change, storedAs: "rename" };
        return { when: "deferred", change: { op: "rename", diskId: from.diskId, fromPath: change.fromPath, record: change.record }, storedAs: "rename" };
      }
      case "delete": {
        const row = view.locate(change.path);
        if (!row) return { when: "now", diskId: view.targetDisk(), change, storedAs: "delete" };
        if (view.writtenNow(row.diskId)) return { when: "now", diskId: row.diskId, change, storedAs: "delete" };
        return { when: "deferred", change: { op: "delete", diskId: row.diskId, path: change.path }, storedAs: "delete" };
      }
    }
  }

  /**
   * Content held by another disk: a hardlink there (now if it is written,
   * else deferred); no second copy of the data. A deferred hardlink needs a
   * holder that is still there at its place in that disk's queue: not one
   * this batch changes. One made now may take any (the disk writer makes a
   * batch's links before its changes, and a change another disk makes of
   * the holder's path only queues its removal here).
   */
  #linkElsewhere(record: FileRecord, except: string, batch: BatchState, which: "alike" | "any"): Exclude<Placement, { when: "replan" }> | undefined {
    const holder = batch.inArchive(record, which).find((row) => this.#view.writtenNow(row.diskId) || !batch.touched.has(row.path));
    if (!holder || holder.diskId === except) return undefined;
    if (this.#view.writtenNow(holder.diskId)) {
      if (!batch.heldOn(holder.diskId, record, which)) return undefined;
      return { when: "now", diskId: holder.diskId, change: { op: "link", record, from: batch.sources(holder.diskId, record, which) }, storedAs: "link" };
    }
    return { when: "deferred", change: { op: "link", diskId: holder.diskId, record }, storedAs: "link" };
  }

  /**
   * A change for a disk whose written copy is behind, on a path its queue
   * still changes, goes into that queue instead (for that copy as well), so
   * every copy's changes of one path stay in order.
   */
  #behindWaiting(placement: Placement): Placement {
    if (placement.when !== "now") return placement;
    const { diskId, change } = placement;
    let waiting = this.#waiting.get(diskId);
    if (!waiting) {
      const atStart = this.#view.waitingPaths(diskId);
      if (!atStart) return placement;
      waiting = new Set(atStart);
      this.#waiting.set(diskId, waiting);
    }
    const paths = change.op === "delete" ? [change.path] : change.op === "rename" ? [change.record.path, change.fromPath] : [change.record.path];
    if (!paths.some((path) => waiting.has(path))) return placement;
    for (const path of paths) waiting.add(path);
    const { storedAs } = placement;
    switch (change.op) {
      case "delete":
        return { when: "deferred", change: { op: "delete", diskId, path: change.path }, storedAs };
      case "rename":
        return { when: "deferred", change: { op: "rename", diskId, fromPath: change.fromPath, record: change.record }, storedAs };
      case "link":
        return { when: "deferred", change: { op: "link", diskId, record: change.record }, storedAs, unneededTemp: placement.unneededTemp };
      case "place":
        return { when: "deferred", change: { op: "copy", diskId, record: change.record }, storedAs, unneededTemp: { diskId, tempName: change.tempName } };
      case "symlink":
        return { when: "deferred", change: { op: "copy", diskId, record: change.record }, storedAs };
    }
  }
}

/**
 * One batch as the planner sees it: who holds each of its contents, looked
 * up once per batch (a lookup per file was a tenth of a small-file run),
 * per disk from its catalog and across the archive from the host catalog,
 * as the batch began (nothing is recorded before the batch's writers
 * commit); and the batch's own changes so far.
 */
class BatchState {
  readonly #contents: readonly Content[];
  readonly #view: PlannerView;
  readonly #onDisk = new Map<string, ReadonlyMap<string, readonly Held<string>[]>>();
  #inArchive: ReadonlyMap<string, readonly Held<ArchiveHolder>[]> | undefined;
  /** Paths the batch changed so far. */
  readonly touched = new Set<string>();
  /** Per disk: how many changes the batch makes there now (the next one's index in that disk's batch). */
  readonly #count = new Map<string, number>();
  /** Per disk, by content hash: copies the batch places there, with their index in that disk's batch. */
  readonly #placed = new Map<string, Map<string, { readonly content: Content; readonly index: number }[]>>();
  /** Per disk, by source inode: the first symlink the batch makes there. */
  readonly #symlinks = new Map<string, number>();

  constructor(contents: readonly Content[], view: PlannerView) {
    this.#contents = contents;
    this.#view = view;
  }

  /**
   * The batch's holders on one disk, asked only for contents the archive
   * holds somewhere: most of a batch is new content, and a disk holds
   * nothing the host catalog does not know (at worst a missed holder costs
   * a second copy, never a wrong link).
   */
  #on(diskId: string): ReadonlyMap<string, readonly Held<string>[]> {
    let found = this.#onDisk.get(diskId);
    if (!found) {
      const known = this.#contents.filter((content) => this.inArchive(content, "any").length > 0);
      found = known.length > 0 && this.#view.writtenNow(diskId) ? this.#view.holdersOnDiskOfEach(diskId, known) : new Map();
      this.#onDisk.set(diskId, found);
    }
    return found;
  }

  /** Whether the disk held the content as the batch began ("alike": in a file showing its mtime and mode too). */
  heldOn(diskId: string, content: Content, which: "alike" | "any"): boolean {
    const held = this.#on(diskId);
    // Most batches are all new content: nothing to look up, no key to build.
    if (held.size === 0) return false;
    return held.get(contentKey(content))?.some((item) => which === "any" || item.alike) ?? false;
  }

  /** Paths anywhere in the archive (disks not retired) holding the content, with their disk ("alike" first, or only). */
  inArchive(content: Content, which: "alike" | "any"): ArchiveHolder[] {
    this.#inArchive ??= this.#view.holdersInArchiveOfEach(this.#contents);
    if (this.#inArchive.size === 0) return [];
    return (this.#inArchive.get(contentKey(content)) ?? []).filter((item) => which === "any" || item.alike).map((item) => item.holder);
  }

  /**
   * Where a hardlink of the content on this disk takes its inode, best
   * first: copies this batch places there, then the disk's holders, those
   * showing the content's mtime and mode before the others ("alike": only those).
   */
  sources(diskId: string, content: Content, which: "alike" | "any"): LinkSource[] {
    const placed = this.#placed.get(diskId)?.get(content.hash) ?? [];
    const held = this.heldOn(diskId, content, "any") ? (this.#on(diskId).get(contentKey(content)) ?? []) : [];
    const sources: LinkSource[] = [];
    for (const alike of which === "alike" ? [true] : [true, false]) {
      for (const item of placed) if (item.content.size === content.size && showsAlike(item.content, content) === alike) sources.push({ inBatch: item.index });
      for (const item of held) if (item.alike === alike) sources.push(item.holder);
    }
    return sources;
  }

  /** A second name of a source symlink: the one this batch makes on the disk, then those the disk holds. */
  symlinkSources(diskId: string, record: FileRecord): LinkSource[] {
    const inBatch = this.#symlinks.get(symlinkKey(diskId, record));
    return [...(inBatch === undefined ? [] : [{ inBatch }]), ...this.#view.symlinkNamesOn(diskId, record)];
  }

  /** A change the batch makes now on its disk, in that disk's order. */
  added(placement: Placement & { when: "now" }): void {
    const { diskId, change } = placement;
    const index = this.#count.get(diskId) ?? 0;
    this.#count.set(diskId, index + 1);
    if (change.op === "place" && change.record.kind === "file") {
      let byHash = this.#placed.get(diskId);
      if (!byHash) this.#placed.set(diskId, (byHash = new Map()));
      const list = byHash.get(change.record.hash) ?? [];
      list.push({ content: change.record, index });
      byHash.set(change.record.hash, list);
    } else if (change.op === "symlink") {
      const key = symlinkKey(diskId, change.record);
      if (!this.#symlinks.has(key)) this.#symlinks.set(key, index);
    }
  }
}

/** A content by its bytes alone (hash and size), whatever mtime and mode its files show. */
function dataKey(hash: string, size: number): string {
  return `${hash}/${size}`;
}

function symlinkKey(diskId: string, record: FileRecord): string {
  return `${diskId}\0${record.dev}:${record.ino}`;
}

/** The contents a batch may store as hardlinks: copied files (duplicates found late) and planned links. */
function contentsToLink(changes: readonly FileChange[]): Content[] {
  const contents: Content[] = [];
  for (const change of changes) if ((change.op === "copied" || change.op === "link") && change.record.kind === "file") contents.push(change.record);
  return contents;
}

/** A planned file as the content its disk copy would show. */
function asContent(item: PlannedFile, hash: string): Content {
  return { hash, size: item.size, mtimeMs: item.mtimeMs, mtimeNsec: item.mtimeNsec ?? null, mode: item.mode };
}
