import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { resolve } from "node:path";
import { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { RunLinks } from "../catalog/run-links.ts";
import { SeenPaths } from "../catalog/seen-paths.ts";
import { excludePatterns, requireDb, requireDest, type Settings } from "../config.ts";
import { CopyPool } from "../copy/copy-pool.ts";
import { DiskWriter, recoverDisk } from "../disk/disk-writer.ts";
import { MountedDisk } from "../disk/mounted-disk.ts";
import { SpaceBudget } from "../disk/space-budget.ts";
import { BlaineError, ExitCode, UsageError } from "../errors.ts";
import { parseExclude } from "../glob.ts";
import type { PlannedFile, StoredFile } from "../pipeline/types.ts";
import { RunReport } from "../report.ts";
import { resolveSizeOrPercent } from "../size.ts";
import { copyOne, type CopierOptions, type CopyFunction } from "../stages/copier.ts";
import type { DedupOptions } from "../stages/dedup.ts";
import type { DiffOptions } from "../stages/differ.ts";
import type { HashOptions } from "../stages/hasher.ts";
import type { ManifestWriterOptions } from "../stages/manifest-writer.ts";
import type { WalkOptions } from "../stages/walker.ts";
import { copyWithDc3dd } from "../system/dc3dd.ts";

/**
 * Everything one archive run needs, opened and wired: the catalog (locked),
 * the target disk (recovered from any killed run), and each stage's options.
 * Pipelines compose stages over this; they hold no logic of their own.
 */
export interface ArchiveRun {
  readonly settings: Settings;
  readonly report: RunReport;
  readonly signal: AbortSignal;
  readonly catalog: ArchiveCatalog;
  readonly disk: MountedDisk;
  readonly writer: DiskWriter;
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
  readonly dedup: DedupOptions;
  readonly copier: CopierOptions;
  readonly manifest: ManifestWriterOptions;
  close(): void;
}

export interface OpenRunOptions {
  readonly report?: RunReport;
  readonly signal?: AbortSignal;
}

export function openArchiveRun(settings: Settings, options: OpenRunOptions = {}): ArchiveRun {
  const report = options.report ?? new RunReport();
  const signal = options.signal ?? new AbortController().signal;
  const dryRun = settings.dryRun;
  const db = requireDb(settings);
  const dests = requireDest(settings);
  if (settings.sources.length === 0) throw new UsageError("nothing to archive: give SOURCE… or set sources in blaine.toml");
  for (const source of settings.sources) {
    // A missing source would look like "everything was deleted".
    if (!existsSync(source)) throw new UsageError(`source ${source} does not exist (is it mounted?)`);
  }

  const catalog = ArchiveCatalog.open(db, { readonly: dryRun, lock: !dryRun });
  try {
    catalog.requireArchiveId();
    const disks = dests.map((dest, index) => MountedDisk.open(catalog, dest, `disk${index}`, { readonly: dryRun }));
    let recovered = 0;
    if (!dryRun) for (const disk of disks) recovered += recoverDisk(catalog, disk);
    const disk = disks.find((candidate) => candidate.row.state === "open");
    if (!disk) {
      throw new BlaineError(`no open archive disk among ${dests.join(", ")}: all are full; run "blaine disk init DIR --label NAME" for a new one`, ExitCode.incomplete);
    }
    const { total } = disk.fileSystemSpace();
    const space = new SpaceBudget(disk, {
      reserve: resolveSizeOrPercent(settings.reserve, total),
      capacity: settings.capacity ?? disk.row.capacity,
      usedAtStart: disk.usedBytes(catalog),
    });
    const writer = new DiskWriter(catalog, disk);
    const seen = new SeenPaths(catalog);
    const runLinks = new RunLinks(catalog);
    const runId = dryRun
      ? undefined
      : (catalog.sqlite.query("INSERT INTO runs (started_at, hostname) VALUES (?, ?) RETURNING id").get(report.startedAt, hostname()) as { id: number }).id;

    const pool = new CopyPool();
    const copy: CopyFunction = settings.copier === "dc3dd" ? copyWithDc3dd : (request) => pool.copy(request);
    const copierOptions: CopierOptions = {
      algorithm: settings.hash,
      space,
      report,
      copy,
      dryRun,
      signal,
      newTemp: () => {
        const name = writer.newTempName();
        return { name, path: writer.tempPath(name) };
      },
    };
    const skipPaths = new Set<string>([...disks.map((d) => d.root), resolve(db), `${resolve(db)}.lock`, `${resolve(db)}-journal`]);
    return {
      settings,
      report,
      signal,
      catalog,
      disk,
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
        signal,
        onError: (path, message) => {
          report.error(path, message);
          report.counts.skipped++;
        },
        onSkip: (path, reason) => {
          report.warn(path, reason);
          report.counts.skipped++;
        },
      },
      diff: { catalog, match: settings.match, seen, report, signal },
      hash: { catalog, algorithm: settings.hash, report, dryRun, signal },
      dedup: { holdersOf: (hash, size) => writer.holdersOf(hash, size) },
      copier: copierOptions,
      manifest: {
        writer,
        report,
        runLinks,
        dryRun,
        signal,
        copyAgain: (item: PlannedFile): Promise<StoredFile | undefined> => copyOne(item, copierOptions),
      },
      close: () => {
        pool.close();
        for (const mounted of disks) catalog.detach(mounted.alias);
        catalog.close();
      },
    };
  } catch (error) {
    catalog.close();
    throw error;
  }
}
