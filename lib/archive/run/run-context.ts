import { existsSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { resolve } from "node:path";
import { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { InodeRefresh } from "../catalog/inode-refresh.ts";
import { RunLinks } from "../catalog/run-links.ts";
import { SeenPaths } from "../catalog/seen-paths.ts";
import { excludePatterns, requireDb, requireDest, type Settings } from "../settings.ts";
import type { CopyRequest } from "../../copy/builtin-copy.ts";
import { CopyPool } from "../../copy/copy-pool.ts";
import type { ApplyDeferredResult } from "../disk/apply-deferred.ts";
import { dataSourcesOf } from "../disk/apply-deferred.ts";
import { readDamaged, recopyDamaged, writeDamaged } from "../disk/damaged-copies.ts";
import { DeferredQueue } from "../catalog/deferred-actions-table.ts";
import { DiskWriter, type Placer } from "../disk/disk-writer.ts";
import { describeStale, expandDiskDirectories, mountDisks } from "../disk/mount-disks.ts";
import type { MountedDisk } from "../disk/mounted-disk.ts";
import { catalogRoomAtStart, SpaceBudget } from "../disk/space-budget.ts";
import { KeySource } from "../../secrets/key-source.ts";
import { BlaineError, ExitCode, UsageError } from "../../errors.ts";
import { parseExclude } from "../../glob.ts";
import type { PlannedFile, StoredFile } from "../stages/types.ts";
import { RunReport } from "./report.ts";
import { resolveSizeOrPercent } from "../../size.ts";
import { copier, type CopierOptions, type CopyFunction } from "../stages/copier.ts";
import { parity, type ParityOptions } from "../stages/parity.ts";
import type { PlanOptions } from "../stages/plan.ts";
import type { DiffOptions } from "../stages/differ.ts";
import type { HashOptions } from "../stages/hasher.ts";
import type { ManifestWriterOptions } from "../stages/manifest-writer.ts";
import { discardSpareWalkWorker, prestartWalkWorker, type WalkOptions } from "../stages/walker.ts";
import { copyWithDc3dd } from "../../system/dc3dd.ts";
import { ArchiveWriter } from "./archive-writer.ts";
import { paritySliceSize, type StoredSet } from "../disk/parity-store.ts";
import { requireParityEngine } from "../../system/par2-tools.ts";
import { catalogView } from "./catalog-view.ts";
import { Planner } from "./planner.ts";
import { endRun } from "./end-run.ts";
import type { RunResult } from "./finish-run.ts";
import { refuseSourcesOnDisks } from "./sources-on-disks.ts";

/**
 * Everything one archive run needs, opened and wired: the catalog (locked),
 * the mounted disks (recovered from any killed run, deferred actions
 * applied), the space budget that spans new data over the open disks, and
 * each stage's options. Pipelines compose stages over this; they hold no
 * logic of their own.
 */
export interface ArchiveRun {
  readonly settings: Settings;
  readonly report: RunReport;
  readonly signal: AbortSignal;
  readonly catalog: ArchiveCatalog;
  /** The disk new data goes to now (changes when one fills up and the run spans onto the next). */
  readonly disk: MountedDisk;
  /** Every mounted disk of the archive, in the order given. */
  readonly disks: readonly MountedDisk[];
  /** Open disks that filled up during this run (marked full), in order. */
  readonly filledUp: readonly MountedDisk[];
  /** What applying the mounted copies' deferred actions did when they were opened. */
  readonly deferredAtOpen: readonly ApplyDeferredResult[];
  /** Decides where each file goes (see Planner); the writer carries its placements out. */
  readonly planner: Planner;
  readonly writer: ArchiveWriter;
  readonly seen: SeenPaths;
  readonly runLinks: RunLinks;
  readonly space: SpaceBudget;
  readonly sources: readonly string[];
  readonly runId: number | undefined;
  /** Interrupted operations found and settled when the disk was opened. */
  readonly recovered: number;
  readonly walk: WalkOptions;
  readonly diff: DiffOptions;
  readonly hash: HashOptions;
  readonly plan: PlanOptions;
  readonly copier: CopierOptions;
  /** The parity stage's options (its policy is undefined when parity is off: items pass through). */
  readonly parity: ParityOptions;
  /** Sets the parity stage made, per disk root: recorded once durable, when the run settles parity (see settleParity). */
  readonly paritySetsMade: Map<string, Map<string, StoredSet>>;
  readonly manifest: ManifestWriterOptions;
  /**
   * The sink of the archive pipeline: pulls the last stage (the manifest
   * writer) to its end, then ends the run as every run ends: deletions,
   * counts made final, parity settled, the run recorded (see endRun).
   */
  finish(stored: AsyncIterable<StoredFile>): Promise<RunResult>;
  /** Whether `finish` was called. */
  readonly finished: boolean;
  close(): void;
}

/**
 * The catalog room held in a file during a run: what a commit of a whole
 * batch (2000 files) may need, rows and journal (see catalogBytesPerFile).
 */
const ROOM_KEPT_FOR_COMMITS = 2000 * 1024;

export interface OpenRunOptions {
  readonly report?: RunReport;
  readonly signal?: AbortSignal;
}

/**
 * A capacity given to a run is the disk's from then on, as if given at disk
 * init (a run without the flag must not overfill it); a disk marked full
 * that the new capacity leaves room on is open again. Returns those.
 */
function keepCapacity(catalog: ArchiveCatalog, disks: readonly MountedDisk[], capacity: number): Set<MountedDisk> {
  const reopened = new Set<MountedDisk>();
  catalog.transaction(() => {
    for (const disk of disks) {
      if (disk.row.state === "retired") continue;
      const reopen = disk.row.state === "full" && disk.row.capacity !== capacity && disk.usedBytes(catalog) < capacity;
      catalog.disks.setCapacity(disk.label.diskId, capacity, reopen);
      if (reopen) reopened.add(disk);
    }
  });
  return reopened;
}

export async function openArchiveRun(settings: Settings, options: OpenRunOptions = {}): Promise<ArchiveRun> {
  const report = options.report ?? new RunReport();
  const signal = options.signal ?? new AbortController().signal;
  const dryRun = settings.dryRun;
  const db = requireDb(settings);
  requireDest(settings);
  if (settings.sources.length === 0) throw new UsageError("nothing to archive: give SOURCE… or set sources in blaine.toml");
  for (const source of settings.sources) {
    // A missing source would look like "everything was deleted".
    if (!existsSync(source)) throw new UsageError(`source ${source} does not exist (is it mounted?)`);
  }

  // Its start overlaps the opening of the catalog and the disks (see prestartWalkWorker).
  prestartWalkWorker();
  const catalog = ArchiveCatalog.open(db, { readonly: dryRun, lock: !dryRun });
  try {
    const archiveId = catalog.requireArchiveId();
    const diskDirs = expandDiskDirectories(settings.dest, settings.disks);
    refuseSourcesOnDisks(settings.sources, [...diskDirs.required, ...diskDirs.optional], archiveId);
    const keys = new KeySource(settings.keyfiles);
    const mounted = await mountDisks(catalog, diskDirs, { write: !dryRun, signal, keys });
    const { disks, recovered } = mounted;
    describeStale(mounted.stale).forEach((line, index) => report.warn(mounted.stale[index].dir, line));
    // One writer per disk: its first mounted copy that has caught up, else
    // (swap day: the copy that holds the last days' data is away) its first
    // mounted copy, which takes the run's changes at once except on the
    // paths its queue still changes: those are queued behind, in order.
    const queue = new DeferredQueue(catalog);
    const writable = new Map<string, MountedDisk>();
    for (const disk of disks) {
      if (writable.has(disk.label.diskId)) continue;
      const copies = disks.filter((other) => other.label.diskId === disk.label.diskId);
      writable.set(disk.label.diskId, copies.find((copy) => dryRun || queue.count(copy.label.copyId) === 0) ?? disk);
    }
    for (const disk of disks) {
      if (!dryRun && queue.count(disk.label.copyId) === 0) await recopyDamagedOnOpen(catalog, disk, disks, report, signal);
    }
    const reopened = settings.capacity !== undefined && !dryRun ? keepCapacity(catalog, [...writable.values()], settings.capacity) : new Set<MountedDisk>();
    const open = [...writable.values()].filter((disk) => disk.row.state === "open" || reopened.has(disk));
    if (writable.size === 0) throw new BlaineError(`no archive disk is mounted among ${[...settings.dest, ...settings.disks].join(", ")}`, ExitCode.incomplete);
    // With every mounted disk full, the run still records renames, links and
    // deletions; new data is not stored, and the run ends with exit 3 saying
    // that a new disk is needed.
    const closed = open.length === 0;
    if (closed) report.warn([...writable.values()][0].dir, `every mounted disk is full: new data cannot be stored; run "blaine disk init DIR --label NAME" for a new disk`);
    const filledUp: MountedDisk[] = [];
    const pool = new CopyPool();
    // Placing copied temps is as dear as copying a small file: the copy workers do both.
    const placer: Placer = (root, moves) => pool.placeAll(root, moves);
    const diskWriters = [...writable.values()].map((disk) => new DiskWriter(catalog, disk, { placer }));
    const hostCatalogBytes = statSync(catalog.path).size;
    // The catalog room of each disk, part of it held in a file the commits may give up (see keepRoomForCommits):
    // as much as one batch's commit may need, within a twentieth of the disk.
    const catalogRoom = new Map(
      diskWriters.map((writer) => {
        const { blockSize, total } = writer.disk.fileSystemSpace();
        const room = catalogRoomAtStart(writer.disk, hostCatalogBytes, blockSize);
        const wanted = Math.min(Math.max(room, ROOM_KEPT_FOR_COMMITS), Math.floor(total / 20 / blockSize) * blockSize);
        const held = dryRun ? 0 : writer.keepRoomForCommits(wanted);
        return [writer.disk, { room, held }];
      }),
    );
    const space = new SpaceBudget(
      (closed ? [...writable.values()] : open).map((disk) => ({
        disk,
        options: {
          reserve: resolveSizeOrPercent(settings.reserve, disk.fileSystemSpace().total),
          catalogRoom: catalogRoom.get(disk)?.room ?? 0,
          catalogRoomHeld: catalogRoom.get(disk)?.held ?? 0,
          capacity: settings.capacity ?? disk.row.capacity,
          // Only a capacity needs it, and summing a large disk's distinct content takes a while.
          usedAtStart: (settings.capacity ?? disk.row.capacity) === null ? 0 : disk.usedBytes(catalog),
          // The parity stage writes recovery data next to each file: it needs room too.
          parityPercent: settings.parity ?? 0,
          closed,
        },
      })),
      {
        onFull: (full, next) => {
          filledUp.push(full);
          if (!dryRun) catalog.disks.markFull(full.label.diskId);
          report.warn(
            full.dir,
            next ? `disk "${full.label.label}" is full; new data continues on ${next.shownAs}` : `disk "${full.label.label}" is full: no space was left for new data`,
          );
        },
        onOutOfSpace: (disk, next) => {
          report.warn(
            disk.dir,
            `disk "${disk.label.label}" ran out of space during the run (is something else writing to it?): ` +
              (next ? `new data continues on ${next.shownAs}` : "no more new data is stored in this run"),
          );
        },
      },
    );
    const writer = new ArchiveWriter(catalog, diskWriters, space);
    const planner = new Planner(catalogView(catalog, writer.writers, space));
    const seen = new SeenPaths(catalog);
    const runLinks = new RunLinks(catalog);
    const inodes = dryRun ? undefined : new InodeRefresh(catalog);
    const runId = dryRun ? undefined : catalog.runs.start(report.startedAt, hostname());

    // dc3dd copies one file per process; the copy workers also take a group of small files at once.
    const copy: CopyFunction =
      settings.copier === "dc3dd" ? copyWithDc3dd : Object.assign((request: CopyRequest) => pool.copy(request), { many: (requests: readonly CopyRequest[]) => pool.copyMany(requests) });
    // The old name of a file that could not be stored stays archived (see applyDeletions).
    const onNotStored = (item: PlannedFile) => runLinks.notStored(item.size, item.hash);
    const parityPolicy = settings.parity === undefined ? undefined : { percent: settings.parity, engine: settings.parityEngine };
    if (parityPolicy && parityPolicy.engine !== "builtin" && !dryRun) requireParityEngine(parityPolicy.engine);
    const copierOptions: CopierOptions = {
      algorithm: settings.hash,
      space,
      report,
      copy,
      dryRun,
      signal,
      newTemp: (disk) => writer.newTemp(disk),
      linkIfHeld: (item) => planner.linkWhenNoRoom(item, settings.hash),
      onNotStored,
      // The built-in engine's set takes the slices' checksums from the copy's read (an external engine reads the file itself).
      checksumsFor: parityPolicy?.engine === "builtin" ? (size) => ({ blockSize: paritySliceSize(size) }) : undefined,
    };

    const paritySetsMade = new Map<string, Map<string, StoredSet>>();
    // Which of the stages the end of the run depends on the pipeline composed (see endRun).
    const stagesUsed = { diff: false, parity: false, manifest: false };
    const parityOptions: ParityOptions = {
      policy: parityPolicy,
      disks,
      catalog,
      report,
      made: paritySetsMade,
      space,
      onNotStored,
      dryRun,
      signal,
      onStart: () => void (stagesUsed.parity = true),
    };
    const readingCopy = ArchiveCatalog.readingCopyPath(resolve(db));
    const skipPaths = new Set<string>([...disks.map((d) => d.root), resolve(db), `${resolve(db)}.lock`, `${resolve(db)}-journal`, readingCopy, `${readingCopy}.tmp`]);
    let finished = false;
    const run: ArchiveRun = {
      settings,
      report,
      signal,
      catalog,
      get disk() {
        return space.current;
      },
      disks,
      filledUp,
      deferredAtOpen: mounted.deferred,
      planner,
      writer,
      seen,
      runLinks,
      space,
      sources: settings.sources,
      runId,
      recovered,
      walk: {
        excludes: excludePatterns(settings).map(parseExclude),
        skipPaths,
        archiveId,
        signal,
        onError: (path, message, gone) => {
          report.error(path, message);
          report.counts.skipped++;
          if (!gone) seen.keepUnreadable(path);
        },
        onSkip: (path, reason) => {
          report.warn(path, reason);
          report.counts.skipped++;
        },
      },
      diff: { catalog, match: settings.match, seen, report, inodes, signal, onStart: () => void (stagesUsed.diff = true) },
      hash: { catalog, algorithm: settings.hash, report, dryRun, onNotStored, inodes, signal },
      plan: { planner },
      copier: copierOptions,
      parity: parityOptions,
      paritySetsMade,
      manifest: {
        planner,
        writer,
        report,
        runLinks,
        dryRun,
        signal,
        onNotStored,
        onStart: () => void (stagesUsed.manifest = true),
        // A file whose placement fell through is copied like any other: through the copier and the parity stage.
        again: (items) => parity(copier(items, copierOptions), { ...parityOptions, onStart: undefined }),
      },
      finish: (stored) => {
        if (finished) throw new Error("the run has already finished");
        finished = true;
        return endRun(run, stored, stagesUsed);
      },
      get finished() {
        return finished;
      },
      close: () => {
        discardSpareWalkWorker();
        pool.close();
        for (const diskWriter of diskWriters) diskWriter.releaseRoomForCommits();
        for (const mounted of disks) catalog.detach(mounted.alias);
        catalog.close();
      },
    };
    return run;
  } catch (error) {
    discardSpareWalkWorker();
    catalog.close();
    throw error;
  }
}

/**
 * What verify found missing or damaged on a mounted copy (and listed there)
 * is copied again from the sources, or another mounted copy, where they
 * still hold the same content; what none holds stays listed and is named.
 */
async function recopyDamagedOnOpen(catalog: ArchiveCatalog, disk: MountedDisk, disks: readonly MountedDisk[], report: RunReport, signal: AbortSignal): Promise<void> {
  const damaged = readDamaged(disk);
  if (damaged.length === 0) return;
  const result = await recopyDamaged(catalog, disk, damaged, { ...dataSourcesOf(disks, disk), signal });
  writeDamaged(catalog, disk, result.left);
  report.counts.recopied += result.recopied.length;
  report.counts.bytesCopied += result.bytesCopied;
  for (const item of result.left) report.warn(item.path, `damaged on disk "${disk.label.label}" (${item.message}); blaine verify --repair may rebuild it from parity`);
}
