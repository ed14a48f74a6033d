import { linkSync, lstatSync, rmdirSync, symlinkSync, unlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import type { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import type { Content, ContentHolders, Held } from "../catalog/content-holders.ts";
import type { EntriesTable } from "../catalog/entries-table.ts";
import { HostFiles } from "../catalog/host-files.ts";
import type { FileRecord } from "../catalog/records.ts";
import { errnoCode, errorMessage, isOutOfSpace, OutOfSpaceError } from "../../errors.ts";
import { crashPoint } from "../../crash-point.ts";
import { syncFileSystem } from "../../fs/atomic.ts";
import { fsPath } from "../../fs/byte-names.ts";
import { exactMtime, setTimes } from "../../fs/exact-mtime.ts";
import { DataTreeDirs } from "../../fs/data-tree-dirs.ts";
import { placeFile } from "../../fs/place-file.ts";
import { reserveSpace } from "../../fs/reserve-space.ts";
import { decodeIntents, encodeIntents, type IntentChange } from "./intents.ts";
import type { MountedDisk } from "./mounted-disk.ts";

/**
 * Where a hardlink takes its inode: an archived path of the disk (its data
 * tree), or the data of an earlier change of the same batch (its index in
 * the batch).
 */
export type LinkSource = string | { readonly inBatch: number };

/**
 * One change to a mounted disk's data tree, and the catalog rows that follow
 * it, as planned (see Planner): the disk writer carries it out, deciding
 * nothing. A change of the archive (`diskOnly` unset) also updates the host
 * catalog's files and is queued for the disk's other copies; a `diskOnly`
 * change brings one copy to what the host catalog already says (applying
 * deferred actions, catching up a twin) and touches only its disk catalog.
 */
export type DiskChange = (
  /** A copied file waiting in .blaine/tmp as `tempName`. */
  | { readonly op: "place"; readonly record: FileRecord; readonly tempName: string }
  /** Content the disk already holds: a hardlink to the first of `from` that still exists. */
  | { readonly op: "link"; readonly record: FileRecord; readonly from: readonly LinkSource[] }
  /** A symlink made anew, or a second name of one of `from` (a source symlink with several names). */
  | { readonly op: "symlink"; readonly record: FileRecord; readonly from?: readonly LinkSource[] }
  | { readonly op: "rename"; readonly fromPath: string; readonly record: FileRecord }
  | { readonly op: "delete"; readonly path: string }
) & { readonly diskOnly?: boolean };

export interface ChangeOutcome {
  readonly change: DiskChange;
  readonly ok: boolean;
  /** Why it failed, for the run's error list (or, with `replan`, why the plan could not be carried out). */
  readonly error?: string;
  /** Not carried out because the disk no longer holds what a link or rename needed: the file is planned again (its data copied). */
  readonly replan?: boolean;
  /** Archived symlinks that stood where this change needs a directory, deleted first (the source replaced them by directories). */
  readonly replacedSymlinks?: number;
  /** Not done: the disk's catalog had no room to record the batch (nothing of it changed on the disk; its temps are gone). */
  readonly noRoom?: boolean;
}

interface PreparedChange {
  readonly change: DiskChange;
  readonly tempName?: string;
  /** A deletion of an archived symlink in the way of the next change's directories (added here; the caller did not ask for it). */
  readonly inTheWay?: boolean;
  outcome?: ChangeOutcome;
}

/**
 * Applies batches of changes to one mounted disk so that a kill -9 at any
 * moment leaves the catalogs and the disk in agreement (after recovery):
 *
 *   temps made durable (syncfs) → intents committed → renames/unlinks →
 *   syncfs → one transaction: host rows + disk rows + intents removed.
 *
 * Every file-system step is atomic (rename, link, unlink), and recovery
 * tells from the file system which intents happened.
 */
export class DiskWriter {
  readonly disk: MountedDisk;
  readonly #catalog: ArchiveCatalog;
  #tempCounter = 0;
  readonly #tempPrefix = `${process.pid}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  readonly #recorder: Recorder;
  readonly #holders: ContentHolders<string>;
  readonly #tempNamePrefix: string;
  /** The data tree's directories, checked not to be symlinks before anything is written below them. */
  readonly #dirs: DataTreeDirs;

  /** Places a batch's copied temps elsewhere (the run's copy workers); unset: one by one on this thread. */
  readonly #placer: Placer | undefined;
  /** The file holding the room kept for commits (see keepRoomForCommits), while there is one. */
  #roomKept: string | undefined;

  constructor(catalog: ArchiveCatalog, disk: MountedDisk, options: { placer?: Placer } = {}) {
    this.#catalog = catalog;
    this.disk = disk;
    this.#placer = options.placer;
    this.#recorder = recorderOf(catalog, disk);
    this.#holders = this.#recorder.entries.holders;
    this.#tempNamePrefix = `${this.#tempPrefix}-`;
    this.#dirs = new DataTreeDirs(disk.root);
  }

  /** A fresh temp path on the disk for the copier to write into. */
  newTempName(): string {
    return this.#tempNamePrefix + (this.#tempCounter++).toString(36);
  }

  tempPath(name: string): string {
    return this.disk.layout.tempPath(name);
  }

  /**
   * Paths on this disk holding `content` now (catalog = disk between
   * batches): "alike" only those whose files show its mtime and mode too
   * (a hardlink to them keeps the disk a plain mirror), "any" all, alike first.
   */
  holdersOf(content: Content, which: "alike" | "any"): string[] {
    return this.#holders
      .of(content)
      .filter((held) => which === "any" || held.alike)
      .map((held) => held.holder);
  }

  /** Paths on this disk holding `content` now, those showing its mtime and mode first, flagged `alike`. */
  holdersOfOne(content: Content): Held<string>[] {
    return this.#holders.of(content);
  }

  /** The holders of every content of a batch at once, alike first, by contentKey (absent: none). */
  holdersOfEach(contents: readonly Content[]): Map<string, Held<string>[]> {
    return this.#holders.lookup(contents);
  }

  /** What this disk's catalog holds at `path` (catalog = disk between batches). */
  entry(path: string): { readonly hash: string; readonly kind: string } | null {
    return this.#recorder.entries.kindAndHashOf(path) ?? null;
  }

  /**
   * Other names on this disk of a source symlink (same inode and target, see
   * FilesTable.symlinksOfInode), as they are now: a name whose symlink here
   * still has another target (its change waits in this copy's queue) is none.
   */
  symlinkNamesOf(record: FileRecord): string[] {
    return this.#catalog.files.symlinksOfInode(record).filter((path) => {
      const held = this.entry(path);
      return held?.kind === "symlink" && held.hash === record.hash;
    });
  }

  /**
   * `inTransaction` runs inside the final transaction with the outcomes, so
   * a caller's own bookkeeping (removing applied deferred actions) commits
   * together with the changes.
   */
  async commit(
    changes: readonly DiskChange[],
    options: { inTransaction?: (outcomes: readonly ChangeOutcome[]) => void } = {},
  ): Promise<ChangeOutcome[]> {
    if (changes.length === 0) return [];
    const root = this.disk.root;
    // Checked again each batch: anything may have been removed since.
    this.#dirs.forget();
    const prepared = this.#prepare(changes);
    // Copied temps must be on disk before an intent can say "rename it".
    if (changes.some((change) => change.op !== "delete")) syncFileSystem(root);
    crashPoint("before-intents");

    const live = prepared.filter((item) => !item.outcome);
    const intentChanges = live.map((item) => toIntentChange(item.change, item.tempName));
    let intentId: number;
    try {
      intentId = this.#recorder.entries.recordIntents(encodeIntents(intentChanges), Date.now());
    } catch (error) {
      if (!isOutOfSpace(error)) throw error;
      // Nothing has changed on the disk: the batch is dropped with its temps, the disk stays as its catalog says.
      for (const item of prepared) {
        if (item.tempName) rmQuiet(this.tempPath(item.tempName));
        if (item.change.op === "place") rmQuiet(this.tempPath(item.change.tempName));
      }
      return changes.map((change) => ({ change, ok: false, noRoom: true, error: `disk "${this.disk.label.label}" (${this.disk.dir}) is full: its catalog could not record more` }));
    }
    crashPoint("after-intents");
    await this.#carryOut(live);
    syncFileSystem(root);
    crashPoint("before-commit");

    const outcomes = outcomesAsked(prepared);
    const record = () =>
      this.#catalog.transactionOfCheckedRows(() => {
        const now = Date.now();
        // Each change is recorded from its intent (built once, for the intents row).
        live.forEach((item, i) => {
          if (item.outcome?.ok) recordChange(this.#recorder, this.disk, intentChanges[i], now);
        });
        this.#recorder.entries.dropIntents(intentId);
        // The catalog knows this copy as of this batch (see stale-copy.ts).
        this.#catalog.disks.noteWrites(this.disk.label.copyId, intentId);
        options.inTransaction?.(outcomes);
      });
    try {
      record();
    } catch (error) {
      if (!isOutOfSpace(error)) throw error;
      // The changes are made and their intents durable: the room kept for this moment is given up, and the record tried again.
      if (!this.releaseRoomForCommits()) throw this.#recordedLater(error);
      try {
        record();
      } catch (again) {
        throw isOutOfSpace(again) ? this.#recordedLater(again) : again;
      }
    }
    crashPoint("after-commit");
    return outcomes;
  }

  /** The batch is on the disk and in its intents, not yet in the catalogs: recovery records it once there is room. */
  #recordedLater(error: unknown): OutOfSpaceError {
    return new OutOfSpaceError(
      `disk "${this.disk.label.label}" (${this.disk.dir}) is full: the last changes made on it could not be recorded in its catalog; ` +
        `they are kept and recorded by the next blaine command once there is room (free some space on the disk)`,
      { cause: error },
    );
  }

  /**
   * Keeps `bytes` of the disk in a file of its own, given up when a commit
   * finds the disk full: the changes a batch already made are then still
   * recorded, even when something else filled the disk meanwhile (SQLite's
   * journal needs room at every commit). A temp: a killed run's is cleared.
   */
  keepRoomForCommits(bytes: number): number {
    const path = this.tempPath(`${this.#tempNamePrefix}room`);
    try {
      reserveSpace(path, bytes);
      this.#roomKept = path;
      return bytes;
    } catch {
      // No room for it (a nearly full disk): commits then go without it.
      rmQuiet(path);
      return 0;
    }
  }

  /** Gives up the room kept for commits; whether there was any. */
  releaseRoomForCommits(): boolean {
    if (!this.#roomKept) return false;
    rmQuiet(this.#roomKept);
    this.#roomKept = undefined;
    return true;
  }

  /**
   * Makes link and symlink temps before any intent exists, so "temp exists"
   * means "not placed yet"; every hardlink of the batch is made before any
   * of its changes, so a source the batch renames or replaces still holds
   * the data. An archived symlink where a change needs a directory (its
   * source was replaced by a directory) is deleted first, as a change of its
   * own in the same batch: recorded, queued for the other copies and
   * recovered like any deletion.
   */
  #prepare(changes: readonly DiskChange[]): PreparedChange[] {
    const touched = new Set<string>();
    const prepared: PreparedChange[] = [];
    /** The temp holding each change's data, by its index in the batch (a link source `{ inBatch }`). */
    const tempOfChange: (string | undefined)[] = [];
    const tree = new BatchTree((path) => this.entry(path)?.kind ?? null);
    for (const change of changes) {
      if (change.op !== "delete") {
        for (const path of tree.symlinksAbove(change.record.path)) {
          const removal: DiskChange = { op: "delete", path, diskOnly: change.diskOnly };
          prepared.push({ change: removal, inTheWay: true });
          tree.set(path, null);
          touched.add(path);
        }
      }
      let item: PreparedChange;
      try {
        item = this.#prepareOne(change, touched, tempOfChange);
      } catch (error) {
        item = { change, outcome: { change, ok: false, error: errorMessage(error) } };
      }
      prepared.push(item);
      tempOfChange.push(item.outcome ? undefined : item.tempName);
      const path = change.op === "delete" ? change.path : change.record.path;
      touched.add(path);
      tree.set(path, change.op === "delete" ? null : change.record.kind);
      if (change.op === "rename") {
        touched.add(change.fromPath);
        tree.set(change.fromPath, null);
      }
    }
    return prepared;
  }

  #prepareOne(change: DiskChange, touched: ReadonlySet<string>, tempOfChange: readonly (string | undefined)[]): PreparedChange {
    const layout = this.disk.layout;
    switch (change.op) {
      case "place":
        return { change, tempName: change.tempName };
      case "delete":
        return { change };
      case "symlink": {
        const linked = change.from && this.#linkFirst(this.#locations(change.from, tempOfChange));
        if (linked) return { change, tempName: linked };
        const tempName = this.newTempName();
        symlinkSync(fsPath(change.record.linkTarget ?? ""), this.tempPath(tempName));
        setTimes(this.tempPath(tempName), exactMtime(change.record.mtimeMs, change.record.mtimeNsec), { noFollow: true });
        return { change, tempName };
      }
      case "link": {
        const tempName = this.#linkFirst(this.#locations(change.from, tempOfChange));
        if (tempName) return { change, tempName };
        const error = `no file of its content is left on disk "${this.disk.label.label}" to link to`;
        return { change, outcome: { change, ok: false, replan: true, error } };
      }
      case "rename": {
        if (touched.has(change.fromPath)) {
          return { change, outcome: { change, ok: false, replan: true, error: `${change.fromPath} is changed earlier in the same batch` } };
        }
        const held = this.entry(change.fromPath)?.hash === change.record.hash;
        if (!held || !this.#dirs.holdsEntry(layout.dataPath(change.fromPath))) {
          return { change, outcome: { change, ok: false, replan: true, error: `${change.fromPath} is not on disk "${this.disk.label.label}" with its archived content` } };
        }
        return { change };
      }
    }
  }

  /** Where link sources are now: paths of the data tree below real directories (see DataTreeDirs), temps of the batch's earlier changes. */
  #locations(from: readonly LinkSource[], tempOfChange: readonly (string | undefined)[]): string[] {
    const locations: string[] = [];
    for (const source of from) {
      if (typeof source !== "string") {
        const temp = tempOfChange[source.inBatch];
        if (temp) locations.push(this.tempPath(temp));
        continue;
      }
      const location = this.disk.layout.dataPath(source);
      // link(2) resolves the holder's directories: one below a symlink is not on this disk.
      if (this.#dirs.parentsAreReal(location)) locations.push(location);
    }
    return locations;
  }

  /**
   * Hardlinks the first candidate that still exists into a new temp;
   * undefined when none does (a candidate may have gone since it was listed).
   */
  #linkFirst(candidates: string[]): string | undefined {
    if (candidates.length === 0) return undefined;
    const tempName = this.newTempName();
    for (const candidate of candidates) {
      try {
        linkSync(fsPath(candidate), this.tempPath(tempName));
        return tempName;
      } catch (error) {
        if (errnoCode(error) !== "ENOENT") throw error;
      }
    }
    return undefined;
  }

  /**
   * Makes a batch's changes in order. With a placer, each long run of
   * consecutive placements (a batch of small copies is nearly all
   * placements) is handed over at once, and nothing after it in the batch
   * starts before it is done.
   */
  async #carryOut(items: PreparedChange[]): Promise<void> {
    let start = 0;
    while (start < items.length) {
      let end = start;
      while (end < items.length && isPlacement(items[end])) end++;
      if (this.#placer && end - start >= HAND_OVER_FROM) {
        await this.#handOver(this.#placer, items.slice(start, end));
        start = end;
        continue;
      }
      // Any other change, or a few placements (a batch of large files), here:
      // handed over, they would wait behind the large copy a worker is busy with.
      const stop = Math.max(end, start + 1);
      for (let i = start; i < stop; i++) {
        items[i].outcome = this.#execute(items[i]);
        crashPoint("mid-placement");
      }
      start = stop;
    }
  }

  async #handOver(placer: Placer, run: PreparedChange[]): Promise<void> {
    const failures = await placer(
      this.disk.root,
      run.map((item) => ({ temp: this.tempPath(item.tempName!), target: this.disk.layout.dataPath((item.change as { record: FileRecord }).record.path) })),
    );
    run.forEach((item, i) => {
      const failure = failures[i];
      item.outcome = failure ? this.#failed(item, failure) : { change: item.change, ok: true };
    });
  }

  #failed(item: PreparedChange, error: unknown): ChangeOutcome {
    if (item.tempName) rmQuiet(this.tempPath(item.tempName));
    return { change: item.change, ok: false, error: describeFsError(error) };
  }

  #execute(item: PreparedChange): ChangeOutcome {
    const { change } = item;
    const layout = this.disk.layout;
    try {
      switch (change.op) {
        case "delete":
          removeData(layout.root, change.path, this.#dirs);
          break;
        case "rename": {
          const from = layout.dataPath(change.fromPath);
          if (!this.#dirs.parentsAreReal(from)) throw new Error(`${change.fromPath} is not on the disk: a symlink stands in its path`);
          placeFile(from, layout.dataPath(change.record.path), this.#dirs);
          pruneEmptyParents(layout.root, change.fromPath, this.#dirs);
          break;
        }
        default:
          placeFile(this.tempPath(item.tempName!), layout.dataPath(change.record.path), this.#dirs);
      }
      return { change, ok: true };
    } catch (error) {
      return this.#failed(item, error);
    }
  }
}

/** Placements in a row worth handing to the placer (see #carryOut). */
const HAND_OVER_FROM = 64;

/** Moves copied temps to their places in the data tree below the disk's `root`, in order (see placeFile); each one's error, or undefined. */
export type Placer = (root: string, moves: readonly { temp: string; target: string }[]) => Promise<(Error | undefined)[]>;

/**
 * The outcomes of the changes a caller asked for, in its order: the
 * deletions of symlinks in the way (see #prepare) are counted on the change
 * that needed them instead.
 */
function outcomesAsked(prepared: readonly PreparedChange[]): ChangeOutcome[] {
  const outcomes: ChangeOutcome[] = [];
  let replaced = 0;
  for (const item of prepared) {
    if (item.inTheWay) {
      if (item.outcome!.ok) replaced++;
      continue;
    }
    outcomes.push(replaced > 0 ? { ...item.outcome!, replacedSymlinks: replaced } : item.outcome!);
    replaced = 0;
  }
  return outcomes;
}

/**
 * What a batch's paths hold as its changes are prepared in order: the disk
 * catalog as the batch began, overlaid with the batch's own changes so far.
 * Finds archived symlinks standing where a path needs a directory.
 */
class BatchTree {
  readonly #catalogKind: (path: string) => string | null;
  readonly #inBatch = new Map<string, string | null>();
  /** Directories with no symlink at or above them: a batch of files in one directory looks its ancestors up once. */
  readonly #clear = new Set<string>();

  constructor(catalogKind: (path: string) => string | null) {
    this.#catalogKind = catalogKind;
  }

  /** What `path` holds now ("file", "symlink"; null: nothing archived there). */
  set(path: string, kind: string | null): void {
    this.#inBatch.set(path, kind);
    // A symlink made where a directory was checked: check again.
    if (kind === "symlink") this.#clear.clear();
  }

  /** The symlinks among `path`'s ancestors, outermost first. */
  symlinksAbove(path: string): string[] {
    const unchecked: string[] = [];
    for (let dir = parentOf(path); dir !== "/" && dir !== "" && !this.#clear.has(dir); dir = parentOf(dir)) unchecked.push(dir);
    const found: string[] = [];
    for (let i = unchecked.length - 1; i >= 0; i--) {
      const dir = unchecked[i];
      const kind = this.#inBatch.has(dir) ? this.#inBatch.get(dir) : this.#catalogKind(dir);
      if (kind === "symlink") found.push(dir);
      this.#clear.add(dir);
    }
    return found;
  }
}

function parentOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash <= 0 ? "/" : path.slice(0, slash);
}

/** A change carried out by moving a temp into place (copies, links and symlinks made in tmp). */
function isPlacement(item: PreparedChange): boolean {
  return item.change.op !== "delete" && item.change.op !== "rename";
}

/** The intent row's form of a change (`tempName`: the temp a placement moves into place). */
function toIntentChange(change: DiskChange, tempName?: string): IntentChange {
  const op = change.op === "delete" || change.op === "rename" ? change.op : "place";
  return {
    op,
    path: change.op === "delete" ? change.path : change.record.path,
    fromPath: change.op === "rename" ? change.fromPath : undefined,
    tempName,
    record: "record" in change ? change.record : undefined,
    diskOnly: change.diskOnly,
  };
}

/**
 * The catalog rows that follow one change carried out on `disk`: its disk
 * catalog always; for a change of the archive also the host's (see HostFiles.made).
 */
function recordChange(r: Recorder, disk: MountedDisk, change: IntentChange, now: number): void {
  if (change.op === "delete" || change.op === "rename") r.entries.delete(change.op === "delete" ? change.path : change.fromPath!);
  if (change.op !== "delete") r.entries.upsert(change.record!, now);
  if (!change.diskOnly) r.hostFiles.made(change, disk.label.diskId, disk.label.copyId, now);
}

/** Where a change carried out on a disk is recorded: its disk catalog's entries (and intents), the host's rows and queues. */
interface Recorder {
  readonly entries: EntriesTable;
  readonly hostFiles: HostFiles;
}

function recorderOf(catalog: ArchiveCatalog, disk: MountedDisk): Recorder {
  return { entries: catalog.entries(disk.alias), hostFiles: new HostFiles(catalog) };
}

/**
 * Finishes or drops what a killed run left in the intents table, deciding
 * from the file system alone, then clears stray temps. Safe to repeat.
 * Returns how many changes were settled.
 */
export function recoverDisk(catalog: ArchiveCatalog, disk: MountedDisk): number {
  const layout = disk.layout;
  const recorder = recorderOf(catalog, disk);
  const batches = recorder.entries.leftIntents().map((row) => ({ id: row.id, intents: decodeIntents(row.changes) }));
  // Temps no intent names (copies in flight, the room kept for commits) go
  // first: on a full disk their room is what lets the transaction below
  // record the rest. A named temp stays until then: it tells "not placed".
  disk.clearTemps(new Set(batches.flatMap((batch) => batch.intents.flatMap((intent) => (intent.tempName ? [intent.tempName] : [])))));
  if (batches.length === 0) return 0;
  let settled = 0;
  const dirs = new DataTreeDirs(disk.root);
  try {
    catalog.transaction(() => {
      settled = 0;
      const now = Date.now();
      // Found only below real directories, and a directory is no archived entry (a symlink replaced by one is gone).
      const exists = (path: string) => dirs.holdsEntry(layout.dataPath(path));
      for (const batch of batches) {
        for (const intent of batch.intents) {
          settled++;
          let done: boolean;
          // A temp that still exists was not placed; a rename whose source is gone happened.
          if (intent.op === "place") done = !lstatQuiet(join(layout.tmp, intent.tempName ?? "")) && exists(intent.path);
          else if (intent.op === "rename") done = !exists(intent.fromPath ?? "") && exists(intent.path);
          else done = !exists(intent.path);
          if (done) recordChange(recorder, disk, intent, now);
        }
        recorder.entries.dropIntents(batch.id);
      }
    });
  } catch (error) {
    if (!isOutOfSpace(error)) throw error;
    throw new OutOfSpaceError(
      `disk "${disk.label.label}" (${disk.dir}) is full: ${settled} change(s) an interrupted run made on it cannot be recorded in its catalog ` +
        `until there is room; free some space on it (files that are not Blaine's) and run the command again`,
      { cause: error },
    );
  }
  disk.clearTemps(new Set());
  return settled;
}

function lstatQuiet(path: string): boolean {
  try {
    lstatSync(fsPath(path));
    return true;
  } catch {
    return false;
  }
}

function rmQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Nothing to clean.
  }
}

/**
 * Removes an archived path's data and the directories it leaves empty. Below
 * a symlink it is not on the disk (nothing is removed wherever that points);
 * a directory there now is what replaced it (see DiskWriter.#prepare).
 */
export function removeData(root: string, path: string, dirs: DataTreeDirs): void {
  const location = join(root, path);
  if (!dirs.parentsAreReal(location)) return;
  try {
    unlinkSync(fsPath(location));
  } catch (error) {
    if (errnoCode(error) !== "ENOENT" && errnoCode(error) !== "EISDIR") throw error;
  }
  pruneEmptyParents(root, path, dirs);
}

/** Removes now-empty directories above `path` (real ones: see DataTreeDirs), never the disk root itself. */
function pruneEmptyParents(root: string, path: string, dirs: DataTreeDirs): void {
  if (!dirs.parentsAreReal(join(root, path))) return;
  dirs.forget();
  let dir = dirname(path);
  while (dir !== "/" && dir !== ".") {
    try {
      rmdirSync(fsPath(join(root, dir)));
    } catch {
      return;
    }
    dir = dirname(dir);
  }
}

function describeFsError(error: unknown): string {
  const code = errnoCode(error);
  if (code === "ENOSPC") return "the archive disk is full";
  return errorMessage(error);
}
