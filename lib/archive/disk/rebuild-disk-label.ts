import { DiskCatalogFile } from "../catalog/disk-catalog-file.ts";
import { existsSync, lstatSync, readdirSync } from "node:fs";
import type { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { BlaineError, ExitCode, UsageError } from "../../errors.ts";
import { fsPath } from "../../fs/byte-names.ts";
import type { KeySource } from "../../secrets/key-source.ts";
import type { DiskLabel } from "./disk-label.ts";
import { diskLayout, type DiskLayout } from "./layout.ts";
import { cipherDirOf, cipherTool, requireCipherTool, unlockDisk } from "./unlock.ts";

/** Host files per disk looked for on the disk when its own catalog cannot tell: enough to tell disks apart. */
const SAMPLE_PER_DISK = 500;

/**
 * What shows that `root` was an archive disk although its disk.json is gone:
 * a cipher directory, a disk catalog that holds entries (or cannot be read),
 * a copy of the host catalog or parity sets. Undefined for a fresh directory
 * and for one a killed `disk init` left (an empty catalog, nothing else).
 * For an encrypted disk only the cipher directory can be seen without a key.
 */
export function formerDiskEvidence(root: string): string | undefined {
  const cipherDir = cipherDirOf(root);
  if (cipherTool("gocryptfs").isInitialised(cipherDir) || cipherTool("securefs").isInitialised(cipherDir)) return `an encrypted cipher directory (${cipherDir})`;
  const layout = diskLayout(root);
  if (existsSync(layout.hostCatalogCopy)) return `a copy of the host catalog (${layout.hostCatalogCopy})`;
  const parity = `${layout.meta}/parity`;
  if (existsSync(parity) && readdirSync(parity).length > 0) return `parity sets (${parity})`;
  if (!existsSync(layout.catalog)) return undefined;
  try {
    const own = DiskCatalogFile.openAsIs(layout.catalog);
    try {
      return own.entries.any() ? `a disk catalog with entries (${layout.catalog})` : undefined;
    } finally {
      own.close();
    }
  } catch {
    return `a disk catalog (${layout.catalog})`;
  }
}

export interface RecoveredLabel {
  readonly label: DiskLabel;
  /** Why this disk and copy: for the user to check. */
  readonly evidence: string;
  /** The directory the disk's data is seen through (a private mountpoint when encrypted). */
  readonly dataRoot: string;
}

interface Copy {
  id: string;
  createdAt: number;
  lastSeenAt: number | null;
  lastMountPath: string | null;
}

/**
 * Writes nothing: works out which disk and copy of the host catalog's
 * archive the directory `root` is, after its disk.json was lost. An
 * encrypted disk (its cipher directory is in the clear) is unlocked with the
 * given keys first, so that its data and catalog can be looked at. The disk
 * is the one whose archived files are on it (by its own catalog when that
 * can be read, else by looking for a sample of each disk's files), or
 * `labelHint`; the copy is the only one, the one last seen at `root`, or the
 * one `copyHint` names (an id or the start of one).
 */
export async function recoverDiskLabel(
  catalog: ArchiveCatalog,
  root: string,
  options: { readonly labelHint?: string; readonly copyHint?: string; readonly keys: KeySource },
): Promise<RecoveredLabel> {
  const archiveId = catalog.requireArchiveId();
  const cipherDir = cipherDirOf(root);
  const cipher = (["gocryptfs", "securefs"] as const).find((name) => cipherTool(name).isInitialised(cipherDir));
  if (cipher) requireCipherTool(cipher, `${root} (encrypted with ${cipher})`);
  // Mounted under a provisional copy id until the real one is known (the fsname only ties the mount to this command).
  const provisional: DiskLabel = { format: 1, archiveId, diskId: "", copyId: `rebuild-${crypto.randomUUID()}`, label: "(being identified)", created: "", ...(cipher ? { cipher } : {}) };
  const dataRoot = await unlockDisk(root, provisional, { readonly: false, keys: options.keys });
  const layout = diskLayout(dataRoot);

  const disks = catalog.disks.notRetired();
  const scores = scoreDisks(catalog, layout, disks);
  const ranked = [...disks].sort((a, b) => (scores.get(b.id) ?? 0) - (scores.get(a.id) ?? 0));
  const describe = (disk: { id: string; label: string }) => `"${disk.label}" (${scores.get(disk.id) ?? 0} of its files found)`;
  let disk: { id: string; label: string };
  if (options.labelHint !== undefined) {
    const named = disks.find((candidate) => candidate.label === options.labelHint);
    if (!named) throw new UsageError(`--label ${options.labelHint}: catalog ${catalog.path} has no such disk (it knows ${disks.map((d) => `"${d.label}"`).join(", ")})`);
    const better = ranked[0];
    if (better && better.id !== named.id && (scores.get(better.id) ?? 0) > (scores.get(named.id) ?? 0)) {
      throw new UsageError(`--label ${options.labelHint}: the data on ${root} looks like disk ${describe(better)} rather than ${describe(named)}; check the label`);
    }
    disk = named;
  } else {
    const best = ranked[0];
    const bestScore = best ? (scores.get(best.id) ?? 0) : 0;
    if (!best || bestScore === 0 || (ranked[1] && (scores.get(ranked[1].id) ?? 0) === bestScore)) {
      throw new BlaineError(
        `cannot tell which disk ${root} is from its data (${ranked.map(describe).join(", ") || "the catalog has no disks"}): give --label NAME`,
        ExitCode.usage,
      );
    }
    disk = best;
  }

  const copies = catalog.disks.copiesOf(disk.id);
  let copy: Copy | undefined;
  let why: string;
  if (options.copyHint !== undefined) {
    const matching = copies.filter((candidate) => candidate.id.startsWith(options.copyHint!));
    if (matching.length !== 1) throw new UsageError(`--copy ${options.copyHint}: ${matching.length === 0 ? "no" : "more than one"} copy of disk "${disk.label}" has such an id (${describeCopies(copies)})`);
    copy = matching[0];
    why = "the copy given with --copy";
  } else if (copies.length === 1) {
    copy = copies[0];
    why = "its only copy";
  } else {
    const here = copies.filter((candidate) => candidate.lastMountPath === root);
    if (here.length !== 1) {
      throw new BlaineError(`disk "${disk.label}" has ${copies.length} copies and none was last seen at ${root} alone: give --copy ID (${describeCopies(copies)})`, ExitCode.usage);
    }
    copy = here[0];
    why = `the copy last seen at ${root}`;
  }
  const label: DiskLabel = {
    format: 1,
    archiveId,
    diskId: disk.id,
    copyId: copy.id,
    label: disk.label,
    created: new Date(copy.createdAt).toISOString(),
    ...(cipher ? { cipher } : {}),
  };
  return { label, evidence: `disk ${describe(disk)}, ${why}`, dataRoot };
}

function describeCopies(copies: readonly Copy[]): string {
  return copies
    .map((copy) => `${copy.id}: last seen ${copy.lastSeenAt ? new Date(copy.lastSeenAt).toISOString() : "never"}${copy.lastMountPath ? ` at ${copy.lastMountPath}` : ""}`)
    .join("; ");
}

/** For each disk, how many of its archived files are on the directory: by the disk's own catalog when it opens, else by a sample looked for on the file system. */
function scoreDisks(catalog: ArchiveCatalog, layout: DiskLayout, disks: readonly { id: string }[]): Map<string, number> {
  const scores = new Map<string, number>();
  try {
    const own = DiskCatalogFile.openAsIs(layout.catalog);
    try {
      for (const entry of own.entries.pathsAndHashes()) {
        const row = catalog.files.diskAndHashOf(entry.path);
        if (row && row.hash === entry.hash) scores.set(row.diskId, (scores.get(row.diskId) ?? 0) + 1);
      }
    } finally {
      own.close();
    }
    if (scores.size > 0) return scores;
  } catch {
    // No readable catalog: look at the data.
  }
  for (const disk of disks) {
    let found = 0;
    for (const file of catalog.files.sampleOfDisk(disk.id, SAMPLE_PER_DISK)) {
      try {
        const stats = lstatSync(fsPath(layout.dataPath(file.path)));
        if (file.kind === "symlink" ? stats.isSymbolicLink() : stats.isFile() && stats.size === file.size) found++;
      } catch {
        // Not on this disk.
      }
    }
    scores.set(disk.id, found);
  }
  return scores;
}
