import { existsSync, mkdirSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { requireDb, type Settings } from "../settings.ts";
import { readDiskLabel, type DiskLabel } from "../disk/disk-label.ts";
import { prepareDiskDirectory } from "../disk/prepare-disk.ts";
import { cipherDirOf, keyThatOpened, requireCipherTool } from "../disk/unlock.ts";
import { BlaineError, ExitCode, UsageError } from "../../errors.ts";
import { KeySource } from "../../secrets/key-source.ts";
import { formatBytes, parseSize } from "../../size.ts";
import type { Output } from "../../cli/output.ts";

/** What a disk label may hold: it names directories and is written on the disk's sticker. */
export const LABEL_PATTERN = /^[\w.+-]+$/u;

export interface DiskInitOptions {
  readonly dir: string;
  readonly label: string;
  readonly capacity?: string | number;
  /** gocryptfs or securefs: everything but disk.json goes into an encrypted directory. */
  readonly encrypt?: string;
}

/**
 * Prepares DIR as a new archive disk and registers it in the host catalog
 * (created when new). The disk side is written first, so a run killed half
 * way is finished by running the same command again.
 */
export async function initDisk(settings: Settings, options: DiskInitOptions, output?: Output): Promise<DiskLabel> {
  const db = requireDb(settings);
  const label = String(options.label ?? "").trim();
  if (!label) throw new UsageError("disk init: --label NAME is required");
  if (!LABEL_PATTERN.test(label)) throw new UsageError(`--label "${label}": use letters, digits, ".", "_", "+" or "-"`);
  const capacity = options.capacity === undefined ? null : parseSize(options.capacity, "--capacity");
  const root = resolve(options.dir);
  if (options.encrypt !== undefined) requireCipherTool(options.encrypt, "--encrypt");
  if (existsSync(root) && !statSync(root).isDirectory()) throw new UsageError(`${options.dir} is not a directory`);
  // A typed password is asked before anything is written: Ctrl-C at the prompt leaves nothing behind.
  const keys = new KeySource(settings.keyfiles);
  if (options.encrypt !== undefined && !existsSync(cipherDirOf(root))) await keys.forNewDisk(label);
  mkdirSync(root, { recursive: true });

  const catalog = ArchiveCatalog.open(db, { create: true, lock: true });
  try {
    const archiveId = catalog.archiveId(true)!;
    const existing = readDiskLabel(root);
    const known = existing && catalog.disks.byId(existing.diskId);
    if (existing && (existing.archiveId !== archiveId || known)) {
      throw new BlaineError(
        `${options.dir} already belongs to an archive (${existing.archiveId}, disk "${existing.label}"); refusing to initialise it again`,
        ExitCode.usage,
      );
    }
    const taken = catalog.disks.byLabel(label);
    if (taken) throw new UsageError(`--label ${label}: the archive already has a disk with that label`);

    const diskLabel: DiskLabel = existing ?? {
      format: 1,
      archiveId,
      diskId: crypto.randomUUID(),
      copyId: crypto.randomUUID(),
      label,
      created: new Date().toISOString(),
      ...(options.encrypt ? { cipher: options.encrypt as DiskLabel["cipher"] } : {}),
    };
    if (existing && (existing.cipher ?? "") !== (options.encrypt ?? "")) {
      throw new UsageError(`${options.dir} was begun as a disk ${existing.cipher ? `encrypted with ${existing.cipher}` : "without encryption"}; give the same --encrypt as the first time`);
    }
    await prepareDiskDirectory(root, diskLabel, keys);
    catalog.transaction(() => {
      const now = Date.now();
      catalog.disks.insert({ id: diskLabel.diskId, label: diskLabel.label, capacity }, now);
      catalog.disks.insertCopy(diskLabel.copyId, diskLabel.diskId, root, now);
    });
    // Which key encrypted it (where it came from, never the key): the one that must be kept.
    const key = keyThatOpened(root);
    output?.say(
      `Initialised ${root} as archive disk "${diskLabel.label}"${capacity !== null ? ` (capacity ${formatBytes(capacity)})` : ""} of archive ${archiveId} (catalog ${db})` +
        (diskLabel.cipher ? `, encrypted with ${diskLabel.cipher}, key from ${key ?? "the key given"}.` : "."),
    );
    output?.result({ ...diskLabel, root, capacity, db, ...(key ? { key } : {}) });
    return diskLabel;
  } finally {
    catalog.close();
  }
}
