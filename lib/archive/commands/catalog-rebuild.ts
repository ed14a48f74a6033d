import { chmodSync, existsSync, renameSync, rmSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { DeferredQueue } from "../catalog/deferred-actions-table.ts";
import { lastRunTimeInCopy } from "../catalog/runs-table.ts";
import { requireDb, type Settings } from "../settings.ts";
import { readDiskLabel } from "../disk/disk-label.ts";
import { diskLayout } from "../disk/layout.ts";
import { keyThatOpened, unlockDisk } from "../disk/unlock.ts";
import { KeySource } from "../../secrets/key-source.ts";
import { BlaineError, ExitCode, UsageError, errorMessage, type ExitCode as ExitCodeValue } from "../../errors.ts";
import { syncFileSystem } from "../../fs/atomic.ts";
import type { Output } from "../../cli/output.ts";

export interface RebuildResult {
  readonly exitCode: ExitCodeValue;
  readonly db: string;
  /** The disk whose copy of the host catalog was the newest, and so was used. */
  readonly from: { readonly dir: string; readonly label: string; readonly lastRun: string | null };
  /** The disks whose copies were compared; `key` says which key opened an encrypted one (never the key). */
  readonly considered: readonly { readonly dir: string; readonly label: string; readonly lastRun: string | null; readonly key?: string }[];
  readonly files: number;
  readonly pending: number;
}

/**
 * `blaine catalog rebuild --db NEW DIR…`: a lost host catalog comes back
 * from the copies every run leaves on its disks (`.blaine/host-catalog.db`).
 * The newest copy among the given disks wins (by its last run, then by file
 * time), deferred actions included, so losing the host loses at most the
 * last run. The new catalog is written to a temp file and renamed into
 * place, then upgraded to this Blaine's schema. Encrypted disks are
 * mounted read-only with the given keys (--keyfile, BLAINE_PASSWORD).
 */
export async function rebuildCatalog(settings: Settings, dirs: readonly string[], output?: Output): Promise<RebuildResult> {
  const db = resolve(requireDb(settings));
  if (dirs.length === 0) throw new UsageError("usage: blaine catalog rebuild --db NEW DIR… (the archive disks to rebuild from)");
  if (existsSync(db)) throw new UsageError(`catalog rebuild: ${db} already exists; give a new file with --db (the old one is never overwritten)`);
  const considered: { dir: string; label: string; lastRun: number; mtime: number; archiveId: string; copy: string; key?: string }[] = [];
  const keys = new KeySource(settings.keyfiles);
  for (const dir of dirs) {
    const root = resolve(dir);
    const label = readDiskLabel(root);
    if (!label) throw new UsageError(`${dir} is not an archive disk (no .blaine/disk.json)`);
    // An encrypted disk's copy is inside its cipher directory: read through a read-only mount.
    let dataRoot = root;
    let key: string | undefined;
    if (label.cipher) {
      if (keys.known().length === 0 && !keys.interactive) throw new UsageError(`disk "${label.label}" is encrypted: give --keyfile FILE or set BLAINE_PASSWORD`);
      try {
        dataRoot = await unlockDisk(root, label, { readonly: true, keys });
      } catch (error) {
        // A disk no given key opens: the others may still hold the newest copy; say which was left out.
        if (!(error instanceof BlaineError) || !error.message.startsWith("wrong key")) throw error;
        output?.say(`${dir}: ${error.message}; skipped (give its key with another --keyfile)`);
        continue;
      }
      key = keyThatOpened(root);
      output?.say(`disk "${label.label}" (${root}) opened with ${key ?? "the key given"}`);
    }
    const copy = diskLayout(dataRoot).hostCatalogCopy;
    if (!existsSync(copy)) {
      output?.say(`${dir}: no host catalog copy on this disk (no run finished with it mounted); skipped`);
      continue;
    }
    let lastRun = 0;
    try {
      lastRun = lastRunTimeInCopy(copy);
    } catch (error) {
      output?.say(`${dir}: its host catalog copy is unreadable (${errorMessage(error)}); skipped`);
      continue;
    }
    considered.push({ dir: root, label: label.label, lastRun, mtime: statSync(copy).mtimeMs, archiveId: label.archiveId, copy, ...(key ? { key } : {}) });
  }
  if (considered.length === 0) throw new BlaineError(`catalog rebuild: none of ${dirs.join(", ")} holds a copy of the host catalog`, ExitCode.failure);
  const archives = new Set(considered.map((item) => item.archiveId));
  if (archives.size > 1) throw new UsageError(`catalog rebuild: the disks belong to different archives (${[...archives].join(", ")}); give disks of one archive`);
  const newest = [...considered].sort((a, b) => b.lastRun - a.lastRun || b.mtime - a.mtime)[0];

  const temp = `${db}.rebuild-tmp`;
  rmSync(temp, { force: true });
  ArchiveCatalog.writeSnapshotOf(newest.copy, temp);
  chmodSync(temp, 0o600);
  syncFileSystem(temp);
  renameSync(temp, db);
  // Opening with the lock applies any newer migrations (an old disk's copy is upgraded).
  const catalog = ArchiveCatalog.open(db, { lock: true });
  let files: number;
  let pending: number;
  try {
    files = catalog.files.count();
    pending = new DeferredQueue(catalog).countAll();
  } finally {
    catalog.close();
  }
  const iso = (ms: number) => (ms ? new Date(ms).toISOString() : null);
  const result: RebuildResult = {
    exitCode: ExitCode.ok,
    db,
    from: { dir: newest.dir, label: newest.label, lastRun: iso(newest.lastRun) },
    considered: considered.map((item) => ({ dir: item.dir, label: item.label, lastRun: iso(item.lastRun), ...(item.key ? { key: item.key } : {}) })),
    files,
    pending,
  };
  if (output) {
    output.say(`Rebuilt ${db} from the copy on disk "${newest.label}" (${newest.dir}, last run ${result.from.lastRun ?? "unknown"}): ${files} files, ${pending} pending deferred action(s).`);
    output.result(result);
  }
  return result;
}
