import { existsSync, realpathSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import type { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { BlaineError, ExitCode, OutOfSpaceError } from "../../errors.ts";
import { hasGlobMagic } from "../../glob.ts";
import { applyDeferred, dataSourcesOf, otherCopiesOf, type ApplyDeferredResult } from "./apply-deferred.ts";
import { readDiskLabel } from "./disk-label.ts";
import { recoverDisk } from "./disk-writer.ts";
import { checkCopyIsCurrent, type StaleCopy } from "./stale-copy.ts";
import { diskLayout } from "./layout.ts";
import { MountedDisk } from "./mounted-disk.ts";
import type { KeySource } from "../../secrets/key-source.ts";
import { quotedPath } from "../../fs/byte-names.ts";

export interface DiskDirectories {
  /** Named with --dest or `dest =`: each must be a mounted archive disk. */
  readonly required: readonly string[];
  /** From `disks = [...]` and globs: used when mounted (a disk.json is there), skipped otherwise. */
  readonly optional: readonly string[];
}

export interface MountedDisks {
  readonly disks: readonly MountedDisk[];
  /** Operations of killed runs settled while opening. */
  readonly recovered: number;
  /** What applying each copy's deferred actions did (only copies that had any). */
  readonly deferred: readonly ApplyDeferredResult[];
  /** Copies not in the state the catalog last saw (made by hand, old images): caught up by a writing open, else only noticed. */
  readonly stale: readonly StaleCopy[];
  /** Disks too full to settle what a killed run or a deferred action left (commands that only read go on without it). */
  readonly unsettled: readonly string[];
}

/** Expands globs (`/mnt/archive*`) into the directories that exist now. */
export function expandDiskDirectories(required: readonly string[], optional: readonly string[]): DiskDirectories {
  const literal: string[] = [];
  const found: string[] = [...optional.filter((dir) => !hasGlobMagic(dir))];
  for (const dir of [...required, ...optional]) {
    if (!hasGlobMagic(dir)) {
      if (required.includes(dir)) literal.push(dir);
      continue;
    }
    found.push(...expandGlob(dir));
  }
  return { required: literal, optional: found.filter((dir) => !literal.includes(dir)) };
}

/** Every directory that may hold a disk (--dest, then `disks` globs expanded), resolved: for commands that only look. */
export function diskDirectoriesOf(settings: { readonly dest: readonly string[]; readonly disks: readonly string[] }): string[] {
  const dirs = expandDiskDirectories(settings.dest, settings.disks);
  return [...dirs.required, ...dirs.optional].map((dir) => resolve(dir));
}

function expandGlob(pattern: string): string[] {
  const absolute = resolve(pattern);
  const parts = absolute.split("/");
  const firstMagic = parts.findIndex((part) => hasGlobMagic(part));
  const base = parts.slice(0, firstMagic).join("/") || "/";
  const rest = parts.slice(firstMagic).join("/");
  if (!existsSync(base)) return [];
  const matches: string[] = [];
  for (const match of new Bun.Glob(rest).scanSync({ cwd: base, onlyFiles: false, dot: false })) {
    const path = join(base, match);
    try {
      if (statSync(path).isDirectory()) matches.push(path);
    } catch {
      // Vanished or unreadable mount point: not mounted.
    }
  }
  return matches.sort();
}

/**
 * Opens every mounted archive disk a command names, in order: required
 * directories must be disks of this archive; optional ones are used when a
 * disk.json is there. The same copy seen through two directories is refused.
 * A writing open then settles what killed runs left (recovery) and applies
 * each copy's deferred actions before anything else touches it.
 */
export async function mountDisks(
  catalog: ArchiveCatalog,
  directories: DiskDirectories,
  options: { readonly write: boolean; readonly settleOnly?: boolean; readonly signal?: AbortSignal; readonly keys?: KeySource },
): Promise<MountedDisks> {
  const candidates = [
    ...directories.required.map((dir) => ({ dir, required: true })),
    ...directories.optional.filter((dir) => existsSync(diskLayout(resolve(dir)).label)).map((dir) => ({ dir, required: false })),
  ];
  const disks: MountedDisk[] = [];
  const byCopy = new Map<string, { dir: string; real: string }>();
  try {
    for (const { dir } of candidates) {
      const real = existsSync(dir) ? realpathSync(dir) : resolve(dir);
      const label = existsSync(dir) ? readDiskLabel(real) : undefined;
      if (label) {
        const seen = byCopy.get(label.copyId);
        if (seen?.real === real) continue;
        if (seen) {
          throw new BlaineError(
            `${seen.dir} and ${dir} both claim to be the same copy (${label.copyId}) of disk "${label.label}": one of them was copied by hand; ` +
              `make a twin with "blaine disk clone ${label.label} DIR" instead`,
            ExitCode.usage,
          );
        }
        byCopy.set(label.copyId, { dir, real });
      }
      const disk = await MountedDisk.open(catalog, dir, `disk${disks.length}`, { readonly: !options.write, settleOnly: options.settleOnly, keys: options.keys });
      disks.push(disk);
      if (disk.row.state === "retired") {
        throw new BlaineError(`${dir} is disk "${disk.row.label}", which is retired; unmount it or give another disk`, ExitCode.usage);
      }
    }
    let recovered = 0;
    const deferred: ApplyDeferredResult[] = [];
    const stale: StaleCopy[] = [];
    const unsettled: string[] = [];
    // A command that only reads (verify, restore) still works on a disk too
    // full to settle: it reads the disk as its catalog says, and says so.
    const settle = async <T>(work: () => T | Promise<T>): Promise<T | undefined> => {
      try {
        return await work();
      } catch (error) {
        if (!(options.settleOnly && error instanceof OutOfSpaceError)) throw error;
        unsettled.push(error.message);
        return undefined;
      }
    };
    if (options.write) {
      for (const disk of disks) recovered += (await settle(() => recoverDisk(catalog, disk))) ?? 0;
      // Before anything is written to a copy: is it the one the catalog knows? (Its catch-up joins its queue.)
      for (const disk of disks) {
        const found = checkCopyIsCurrent(catalog, disk, { queue: !options.settleOnly });
        if (found) stale.push(found);
      }
      for (const disk of disks) {
        const result = await settle(() => applyDeferred(catalog, disk, { ...dataSourcesOf(disks, disk), signal: options.signal }));
        if (result && (result.applied > 0 || result.remaining > 0)) deferred.push(result);
      }
      // A twin may have been the data source of an earlier one and have caught up since: try those again.
      for (const [index, result] of deferred.entries()) {
        if (result.blocked.length === 0) continue;
        const disk = disks.find((candidate) => candidate.root === result.root)!;
        if (otherCopiesOf(disks, disk).length > 0) {
          deferred[index] = (await settle(() => applyDeferred(catalog, disk, { ...dataSourcesOf(disks, disk), signal: options.signal }))) ?? result;
        }
      }
    }
    return { disks, recovered, deferred, stale, unsettled };
  } catch (error) {
    for (const disk of disks) catalog.detach(disk.alias);
    throw error;
  }
}

/** What was found of copies that are not the state the catalog knows. */
export function describeStale(stale: readonly StaleCopy[]): string[] {
  return stale.map(
    (copy) =>
      `${copy.dir} (a copy of disk "${copy.disk}") is older than the catalog knows it (made by hand, or an old image?): ` +
      `${copy.behind} path(s) missing or old, ${copy.extra} no longer archived there; ` +
      (copy.queued ? "brought up to date from the sources and other copies before anything was written to it" : 'a "blaine run" with it mounted brings it up to date'),
  );
}

/** Lines for people about what applying deferred actions did and what is left. */
export function describeDeferred(results: readonly ApplyDeferredResult[]): string[] {
  const lines: string[] = [];
  for (const result of results) {
    if (result.applied > 0) lines.push(`Applied ${result.applied} deferred action(s) to ${result.copy}.`);
    lines.push(...describeLeftBehind(result));
    if (result.remaining > 0) lines.push(`${result.remaining} deferred action(s) still queued for ${result.copy}: see blaine pending`);
  }
  return lines;
}

/** What a copy could not catch up with, path by path, and where its queue stopped. */
export function describeLeftBehind(result: ApplyDeferredResult): string[] {
  const lines = result.blocked.map((item) => `not caught up on ${result.copy}: ${item.op} ${quotedPath(item.path)}: ${item.message}`);
  if (result.stopped) lines.push(`deferred actions of ${result.copy} stopped at ${result.stopped.op} ${quotedPath(result.stopped.path)}: ${result.stopped.message}`);
  return lines;
}
