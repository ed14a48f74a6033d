import { rmSync } from "node:fs";
import type { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import type { FileRecord } from "../catalog/records.ts";
import { copyWithHash } from "../../copy/builtin-copy.ts";
import { hashAlgorithmOf } from "../../hashing.ts";
import { DeferredQueue, type QueuedAction } from "../catalog/deferred-actions-table.ts";
import { DiskWriter, type DiskChange, type LinkSource } from "./disk-writer.ts";
import type { MountedDisk } from "./mounted-disk.ts";

export interface ApplyDeferredOptions {
  /** Other mounted copies of the same disk: where a twin catching up can read data. */
  readonly otherCopies?: readonly MountedDisk[];
  /** Mounted disks of other labels: the last place to read content that a duplicate elsewhere may hold. */
  readonly otherDisks?: readonly MountedDisk[];
  /** Read data from another copy before the source files (cloning); default: sources first (catching up). */
  readonly preferCopies?: boolean;
  /** Actions per transaction (each costs two syncfs). */
  readonly batchSize?: number;
  readonly signal?: AbortSignal;
}

export interface ApplyDeferredResult {
  readonly disk: string;
  /** Where the copy's data is (for an encrypted disk, a private mountpoint): which copy this is, not for messages. */
  readonly root: string;
  /** The copy as messages name it (see MountedDisk.shownAs). */
  readonly copy: string;
  readonly applied: number;
  /** Left queued: data for a catch-up copy found nowhere, or waiting behind such a path. */
  readonly blocked: readonly { op: string; path: string; message: string }[];
  /** The action that could not be applied; it and everything after it stay queued. */
  readonly stopped?: { op: string; path: string; message: string };
  readonly remaining: number;
}

interface Planned {
  readonly action: QueuedAction;
  readonly change?: DiskChange;
}

/**
 * A batch's symlinks with the symlink an earlier change of the batch makes
 * for the same source inode as their first link source: names of one
 * source symlink made in one batch stay one inode.
 */
function withSymlinkNames(changes: DiskChange[]): DiskChange[] {
  const first = new Map<string, number>();
  return changes.map((change, index) => {
    if (change.op !== "symlink") return change;
    const inode = `${change.record.dev}:${change.record.ino}`;
    const earlier = first.get(inode);
    if (earlier === undefined) {
      first.set(inode, index);
      return change;
    }
    const from: LinkSource[] = [{ inBatch: earlier }, ...(change.from ?? [])];
    return { ...change, from };
  });
}

/** The other mounted copies of `disk`'s disk: where a copy that is behind can take data from. */
export function otherCopiesOf(disks: readonly MountedDisk[], disk: MountedDisk): MountedDisk[] {
  return disks.filter((other) => other !== disk && other.label.diskId === disk.label.diskId);
}

/** Where a copy's deferred actions may read data among the mounted disks: its other copies first, then any other disk. */
export function dataSourcesOf(disks: readonly MountedDisk[], disk: MountedDisk): { otherCopies: MountedDisk[]; otherDisks: MountedDisk[] } {
  return { otherCopies: otherCopiesOf(disks, disk), otherDisks: disks.filter((other) => other.label.diskId !== disk.label.diskId) };
}

/**
 * Applies one mounted copy's deferred actions, oldest first, before anything
 * else touches it. Each action is checked against the copy's disk catalog
 * (which agrees with its file system after recovery), so one already carried
 * out is a no-op; the changes go through the DiskWriter's protocol, and the
 * applied actions leave the queue in the same transaction, so a kill -9 at
 * any moment leaves a state the next run finishes. Deferred actions copy
 * data only where nothing on the copy can stand in for it: a twin's
 * catch-up, and an action whose premise no longer holds (a hardlink to
 * content, or a rename of a path, that this copy never received because an
 * earlier catch-up was superseded, or lost). The data then comes from the
 * sources when they still match the catalog hash, else from another mounted
 * copy or disk; found nowhere, only that path waits, never the whole queue.
 */
export async function applyDeferred(catalog: ArchiveCatalog, disk: MountedDisk, options: ApplyDeferredOptions = {}): Promise<ApplyDeferredResult> {
  const queue = new DeferredQueue(catalog);
  const actions = queue.forCopy(disk.label.copyId);
  const base = { disk: disk.label.label, root: disk.root, copy: disk.shownAs };
  if (actions.length === 0) return { ...base, applied: 0, blocked: [], remaining: 0 };
  const writer = new DiskWriter(catalog, disk);
  const entryOf = (path: string) => writer.entry(path);
  const batchSize = options.batchSize ?? 1000;
  const superseded = supersededCopies(actions);

  let applied = 0;
  const blocked: { op: string; path: string; message: string }[] = [];
  const blockedPaths = new Set<string>();
  let stopped: ApplyDeferredResult["stopped"];
  let batch: Planned[] = [];
  const touched = new Set<string>();

  const flush = async (): Promise<boolean> => {
    if (batch.length === 0) return true;
    const planned = batch;
    batch = [];
    touched.clear();
    const withChange = planned.filter((item) => item.change);
    const noOps = planned.filter((item) => !item.change);
    let failure: { item: Planned; message: string } | undefined;
    const record = (outcomes: readonly { ok: boolean; error?: string; replan?: boolean }[]) => {
      for (const item of noOps) queue.remove(item.action.id);
      outcomes.forEach((outcome, index) => {
        const item = withChange[index];
        if (outcome.ok) queue.remove(item.action.id);
        else if (!failure) {
          failure = { item, message: outcome.replan ? "the data it needs is no longer on this disk" : (outcome.error ?? "could not be applied") };
        }
      });
      applied += planned.length - (outcomes.filter((outcome) => !outcome.ok).length);
    };
    if (withChange.length === 0) catalog.transaction(() => record([]));
    else await writer.commit(withSymlinkNames(withChange.map((item) => item.change!)), { inTransaction: record });
    if (failure) {
      stopped = { op: failure.item.action.op, path: failure.item.action.path, message: failure.message };
      queue.setError(failure.item.action.id, failure.message);
      return false;
    }
    return true;
  };

  for (const action of actions) {
    options.signal?.throwIfAborted();
    const paths = action.fromPath ? [action.path, action.fromPath] : [action.path];
    if (paths.some((path) => blockedPaths.has(path))) {
      for (const path of paths) blockedPaths.add(path);
      blocked.push({ op: action.op, path: action.path, message: "waits for an earlier action on the same path that could not be applied" });
      continue;
    }
    if (superseded.has(action.id)) {
      batch.push({ action });
      continue;
    }
    if (paths.some((path) => touched.has(path)) && !(await flush())) break;
    let decided = await decide(action);
    if (decided === "flush-and-retry") {
      if (!(await flush())) break;
      decided = await decide(action);
    }
    if (typeof decided === "string") {
      // Cannot be applied now: stop this copy's queue here, naming the action.
      stopped = { op: action.op, path: action.path, message: decided };
      queue.setError(action.id, decided);
      await flush();
      break;
    }
    if ("blocked" in decided) {
      for (const path of paths) blockedPaths.add(path);
      blocked.push({ op: action.op, path: action.path, message: decided.blocked });
      queue.setError(action.id, decided.blocked);
      continue;
    }
    batch.push(decided);
    for (const path of paths) touched.add(path);
    if (batch.length >= batchSize && !(await flush())) break;
  }
  if (!stopped) await flush();
  return { ...base, applied, blocked, ...(stopped ? { stopped } : {}), remaining: queue.count(disk.label.copyId) };

  /** What to do with one action: a change, a no-op (already done), or why it cannot be done. */
  async function decide(action: QueuedAction): Promise<Planned | { blocked: string } | string | "flush-and-retry"> {
    const record = action.record;
    const now = entryOf(action.path);
    switch (action.op) {
      case "delete":
        return now ? { action, change: { op: "delete", path: action.path, diskOnly: true } } : { action };
      case "rename": {
        const from = entryOf(action.fromPath!);
        if (from && from.hash === record!.hash) return { action, change: { op: "rename", fromPath: action.fromPath!, record: record!, diskOnly: true } };
        if (!from && now?.hash === record!.hash) return { action };
        if (from) {
          return `cannot rename ${action.fromPath} to ${action.path} on ${disk.shownAs}: ${action.fromPath} is on it with other content than was archived`;
        }
        // The copy never had fromPath (or lost it): what the rename leaves is fetched instead.
        return await fetched(action, record!);
      }
      case "symlink":
        if (now?.hash === record!.hash && now.kind === "symlink") return { action };
        // A second name of a source symlink is a second name on this copy too.
        return { action, change: { op: "symlink", record: record!, diskOnly: true, from: writer.symlinkNamesOf(record!) } };
      case "link":
      case "copy": {
        if (now?.hash === record!.hash && now.kind === record!.kind) return { action };
        // A copy is made a hardlink only to a file showing the same mtime and mode; a link was one on the disk it came from, and takes any.
        const holders = writer.holdersOf(record!, action.op === "copy" ? "alike" : "any").filter((path) => !touched.has(path));
        if (holders.length > 0) return { action, change: { op: "link", record: record!, diskOnly: true, from: holders } };
        if (touched.size > 0 && batch.length > 0) return "flush-and-retry";
        // A copy (catch-up), or a hardlink to content this copy never got or no longer holds.
        return await fetched(action, record!);
      }
    }
  }

  /** The action done by placing fetched data at its path, or why it must wait. */
  async function fetched(action: QueuedAction, record: FileRecord): Promise<Planned | { blocked: string }> {
    const tempName = await fetchData(record);
    if (!tempName) {
      return {
        blocked: `no copy of the data: the source file has changed or is gone, and no other mounted copy of disk "${disk.label.label}" (nor any other mounted disk) holds ${record.hash}; mount its other copy too`,
      };
    }
    return { action, change: { op: "place", record, tempName, diskOnly: true } };
  }

  /** Copies content `record.hash` into a temp on this copy from the first place that still has it. */
  async function fetchData(record: FileRecord): Promise<string | undefined> {
    const tempName = writer.newTempName();
    return (await fetchContent(catalog, record, writer.tempPath(tempName), options)) ? tempName : undefined;
  }
}

/**
 * Copies content `record.hash` to `target` (a temp on the copy that needs
 * it) from the first place that still has it, checking the hash: the
 * sources when they still hold it (at `record.path` or another archived
 * path of that content), then other mounted copies of the disk, then other
 * mounted disks (`preferCopies`: copies first). False when none has it.
 */
export async function fetchContent(
  catalog: ArchiveCatalog,
  record: FileRecord,
  target: string,
  options: Pick<ApplyDeferredOptions, "otherCopies" | "otherDisks" | "preferCopies" | "signal">,
): Promise<boolean> {
  const fromSources = [record.path, ...hostPathsWithContent(catalog, record)];
  const holdersOn = (disks: readonly MountedDisk[]) =>
    disks.flatMap((other) =>
      catalog
        .entries(other.alias)
        .holdersOf(record)
        .map((path) => other.layout.dataPath(path)),
    );
  const fromCopies = holdersOn(options.otherCopies ?? []);
  const candidates = [...(options.preferCopies ? [...fromCopies, ...fromSources] : [...fromSources, ...fromCopies]), ...holdersOn(options.otherDisks ?? [])];
  for (const source of candidates) {
    try {
      const copied = await copyWithHash({ source, target, algorithm: hashAlgorithmOf(record.hash), mode: record.mode, mtimeMs: record.mtimeMs, mtimeNsec: record.mtimeNsec, signal: options.signal });
      if (copied.hash === record.hash && copied.size === record.size) return true;
    } catch {
      // Gone or unreadable: try the next place.
      options.signal?.throwIfAborted();
    }
    rmSync(target, { force: true });
  }
  return false;
}

/** Source paths of other archived files with the same content (a copy's data may have moved in the sources). */
function hostPathsWithContent(catalog: ArchiveCatalog, record: FileRecord): string[] {
  return catalog.files.otherPathsOfContent(record);
}

/**
 * Catch-up copies that a later action replaces anyway (a file edited twice
 * while its twin was away): only the last version is fetched. A copy is
 * superseded by a later copy, symlink or delete of the same path when no
 * action in between renames that path away.
 */
function supersededCopies(actions: readonly QueuedAction[]): Set<number> {
  const superseded = new Set<number>();
  const lastCopyAt = new Map<string, number>();
  for (const action of actions) {
    if (action.fromPath) lastCopyAt.delete(action.fromPath);
    const earlier = lastCopyAt.get(action.path);
    if (earlier !== undefined && (action.op === "copy" || action.op === "symlink" || action.op === "delete")) superseded.add(earlier);
    if (action.op === "copy") lastCopyAt.set(action.path, action.id);
    else lastCopyAt.delete(action.path);
  }
  return superseded;
}
