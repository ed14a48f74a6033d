import { rmSync } from "node:fs";
import type { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { HostFiles } from "../catalog/host-files.ts";
import { DeferredQueue } from "../catalog/deferred-actions-table.ts";
import type { DiskChange, DiskWriter } from "../disk/disk-writer.ts";
import type { MountedDisk } from "../disk/mounted-disk.ts";
import type { SpaceBudget } from "../disk/space-budget.ts";
import type { Placement, UnneededTemp } from "./planner.ts";

/** What became of one placement. */
export interface PlacementOutcome {
  readonly ok: boolean;
  /** Why it failed (or, with `replan`, why it could not be carried out), for the run's error list. */
  readonly error?: string;
  /** Not carried out: what a link or rename needed is not there; the file is planned again (see Planner.replan). */
  readonly replan?: boolean;
  /** Archived symlinks that stood where this change needs a directory, deleted first (the source replaced them by directories). */
  readonly replacedSymlinks?: number;
  /** Not done: the disk's catalog had no room to record the batch (nothing of it changed on the disk; its temps are gone). */
  readonly noRoom?: boolean;
}

/** What the manifest writer and the deletions need of a writer: placements carried out, copies dropped. */
export interface ChangeWriter {
  /** Carries out one batch's placements (see Planner.placeBatch); one outcome each, in order. */
  execute(placements: readonly Placement[]): Promise<PlacementOutcome[]>;
  /** Drops copies that will not be committed: their temps are removed. */
  discard?(temps: readonly UnneededTemp[]): void;
}

/**
 * A run's writer over every disk of the archive: it carries out what the
 * planner placed and decides nothing. A placement made now goes to the
 * disk's DiskWriter (one commit per disk and batch); a deferred one is
 * recorded with the host catalog's rows and queued for every copy of its
 * disk, in one transaction (see HostFiles.deferred), so the host catalog
 * always tells the archive as it will be once every queue is applied.
 */
export class ArchiveWriter implements ChangeWriter {
  readonly #catalog: ArchiveCatalog;
  readonly #space: SpaceBudget;
  /** One writer per disk mounted and written (its first caught-up copy, else its first copy: see openArchiveRun). */
  readonly #writers: Map<string, DiskWriter>;
  readonly #hostFiles: HostFiles;
  readonly #lastQueuedAtStart: number;

  constructor(catalog: ArchiveCatalog, writers: readonly DiskWriter[], space: SpaceBudget) {
    this.#catalog = catalog;
    this.#space = space;
    this.#writers = new Map(writers.map((writer) => [writer.disk.label.diskId, writer]));
    this.#hostFiles = new HostFiles(catalog);
    this.#lastQueuedAtStart = new DeferredQueue(catalog).lastId();
  }

  /** Deferred actions queued since this writer was made, one per copy (offline disks, twins away, old copies to delete). */
  queuedSinceStart(): number {
    return new DeferredQueue(this.#catalog).lastId() - this.#lastQueuedAtStart;
  }

  /** The writers of the disks written now, by disk id. */
  get writers(): ReadonlyMap<string, DiskWriter> {
    return this.#writers;
  }

  /** A temp file for a copy, on the disk its bytes were just reserved on. */
  newTemp(disk: MountedDisk): { name: string; path: string } {
    const writer = this.#writers.get(disk.label.diskId)!;
    const name = writer.newTempName();
    return { name, path: writer.tempPath(name) };
  }

  async execute(placements: readonly Placement[]): Promise<PlacementOutcome[]> {
    const outcomes: PlacementOutcome[] = new Array(placements.length);
    const direct = new Map<string, { index: number; change: DiskChange }[]>();
    const deferred: number[] = [];
    placements.forEach((placement, index) => {
      if (placement.when === "replan") outcomes[index] = { ok: false, replan: true, error: placement.reason };
      else if (placement.when === "deferred") deferred.push(index);
      else {
        const list = direct.get(placement.diskId) ?? [];
        list.push({ index, change: placement.change });
        direct.set(placement.diskId, list);
      }
    });
    if (deferred.length > 0) {
      this.#catalog.transaction(() => {
        const now = Date.now();
        for (const index of deferred) this.#hostFiles.deferred((placements[index] as Placement & { when: "deferred" }).change, now);
      });
      for (const index of deferred) outcomes[index] = { ok: true };
    }
    for (const [diskId, list] of direct) {
      const writer = this.#writers.get(diskId);
      if (!writer) throw new Error(`planned onto disk ${diskId}, which this run does not write`);
      const results = await writer.commit(list.map((item) => item.change));
      // Its catalog could not grow: nothing new is started on that disk any more.
      if (results.some((result) => result.noRoom)) this.#space.noRoomOn(writer.disk);
      list.forEach((item, i) => {
        const { change: _change, ...outcome } = results[i];
        outcomes[item.index] = outcome;
      });
    }
    // Copies that turned out to be content a disk holds, or that wait behind a queue: their temps are not needed.
    this.discard(placements.flatMap((placement) => (placement.when !== "replan" && placement.unneededTemp ? [placement.unneededTemp] : [])));
    return outcomes;
  }

  /** Drops copies that will not be committed (the run stopped for lack of space, or they were not needed): their temps go. */
  discard(temps: readonly UnneededTemp[]): void {
    for (const temp of temps) {
      const writer = this.#writers.get(temp.diskId);
      if (writer) rmSync(writer.tempPath(temp.tempName), { force: true });
    }
  }
}
