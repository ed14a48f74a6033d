import { errorMessage, ExitCode, type ExitCode as ExitCodeValue } from "../../errors.ts";
import { hashAlgorithmOf, hashFile, hashLinkTarget } from "../../hashing.ts";
import { quotedPath, readLinkText } from "../../fs/byte-names.ts";
import { describeUnreadable, isUnreadableData } from "../../fs/salvage-read.ts";
import { DataTreeDirs } from "../../fs/data-tree-dirs.ts";
import { removeDeadTemp } from "../../fs/dead-temps.ts";
import type { MountedDisk } from "../disk/mounted-disk.ts";
import type { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { requireDest, type Settings } from "../settings.ts";
import { BLAINE_DIR } from "../disk/layout.ts";
import { walk } from "../stages/walker.ts";
import { formatBytes } from "../../size.ts";
import { describeDeferred, describeStale } from "../disk/mount-disks.ts";
import { dataSourcesOf } from "../disk/apply-deferred.ts";
import { recopyDamaged, writeDamaged } from "../disk/damaged-copies.ts";
import { openArchive } from "./open-disks.ts";
import type { Output } from "../../cli/output.ts";
import { printParity, verifyParity, type ParityVerification } from "./verify-parity.ts";

export interface DiskVerification {
  readonly label: string;
  readonly root: string;
  readonly files: number;
  readonly bytesRead: number;
  readonly missing: readonly string[];
  /** Damaged files still damaged: what `--repair` repaired is in `repaired` instead. */
  readonly corrupt: readonly { path: string; message: string }[];
  /** Damaged files `--repair` repaired from their parity (hash checked). */
  readonly repaired: readonly string[];
  /** Missing or damaged files `--repair` copied again from the sources or another copy (hash checked). */
  readonly recopied: readonly string[];
  /** Whether what is still missing or damaged is listed on the copy, for the next run to copy again. */
  readonly listedForNextRun: boolean;
  /** On the disk but in no catalog. */
  readonly unexpected: readonly string[];
  /** Temps a repair killed with SIGKILL left in the data tree, removed by `--repair` (not listed as unexpected). */
  readonly deadTempsRemoved: number;
  /** Host and disk catalogs disagree about these paths. */
  readonly catalogMismatch: readonly string[];
}

export interface VerifyResult {
  readonly exitCode: ExitCodeValue;
  readonly disks: readonly DiskVerification[];
  /** PAR2 parity: sets checked, damaged sets, and what --repair repaired. */
  readonly parity: ParityVerification;
}

interface EntryRow {
  path: string;
  kind: "file" | "symlink";
  size: number;
  hash: string;
  linkTarget: string | null;
}

/**
 * Re-reads every file on the mounted disks and compares it with the disk
 * catalog; lists missing, corrupt and unexpected files, and any disagreement
 * between the host and disk catalogs. Hardlinked data is read once.
 */
export async function verifyDisks(settings: Settings, output?: Output, signal?: AbortSignal, options: { repair?: boolean } = {}): Promise<VerifyResult> {
  requireDest(settings);
  // Only --repair writes to the disks: otherwise an encrypted disk with nothing to settle mounts read-only.
  const archive = await openArchive(settings, { write: true, settleOnly: !options.repair, signal });
  try {
    for (const line of [...archive.unsettled.map((message) => `warning: ${message}`), ...describeStale(archive.stale), ...describeDeferred(archive.deferred)]) output?.say(line);
    const found: DiskVerification[] = [];
    for (const disk of archive.disks) found.push(await verifyDisk(archive.catalog, disk, { repair: options.repair === true, signal }));
    const checked = await verifyParity(archive.catalog, archive.disks, found, { repair: options.repair, signal });
    // A file repaired is no longer corrupt: it is listed, counted and judged as repaired only.
    const disks: DiskVerification[] = [];
    for (const [i, disk] of found.entries()) {
      const repaired = new Set(checked.repairedByDisk[i] ?? []);
      const corrupt = disk.corrupt.filter((item) => !repaired.has(item.path));
      const beyondParity = [...disk.missing.map((path) => ({ path, message: "missing" })), ...corrupt];
      // What parity could not repair comes again from a source that still holds it (--repair), else the next run copies it.
      const mounted = archive.disks[i];
      const recopy = options.repair && beyondParity.length > 0 ? await recopyDamaged(archive.catalog, mounted, beyondParity, { ...dataSourcesOf(archive.disks, mounted), signal }) : undefined;
      const recopied = new Set(recopy?.recopied ?? []);
      const listedForNextRun = writeDamaged(archive.catalog, mounted, recopy ? recopy.left : beyondParity);
      disks.push({
        ...disk,
        missing: disk.missing.filter((path) => !recopied.has(path)),
        corrupt: corrupt.filter((item) => !recopied.has(item.path)),
        repaired: [...repaired],
        recopied: [...recopied],
        listedForNextRun,
      });
    }
    // Parity could not repair them, but a source could: no longer unrepairable.
    const recopiedAnywhere = new Set(disks.flatMap((disk) => disk.recopied));
    const parity = { ...checked.parity, unrepaired: checked.parity.unrepaired.filter((item) => !recopiedAnywhere.has(item.path)) };
    const damaged = parity.damagedSets.length > 0 || disks.some((d) => d.missing.length + d.corrupt.length + d.unexpected.length + d.catalogMismatch.length > 0);
    const result: VerifyResult = { exitCode: damaged ? ExitCode.damage : ExitCode.ok, disks, parity };
    if (output) {
      printParity(parity, output);
      printVerify(result, output);
    }
    return result;
  } finally {
    archive.close();
  }
}

async function verifyDisk(catalog: ArchiveCatalog, disk: MountedDisk, options: { readonly repair: boolean; readonly signal?: AbortSignal }): Promise<DiskVerification> {
  const { signal } = options;
  const missing: string[] = [];
  const corrupt: { path: string; message: string }[] = [];
  const hashByInode = new Map<number, string>();
  let files = 0;
  let bytesRead = 0;
  const dirs = new DataTreeDirs(disk.root);
  const entries = catalog.entries(disk.alias);
  for (const entry of entries.all()) {
    signal?.throwIfAborted();
    files++;
    const location = disk.layout.dataPath(entry.path);
    // Below a symlink on the disk a path is not on it, whatever lies where that points.
    let stats;
    try {
      stats = dirs.lstat(location);
    } catch {
      stats = null;
    }
    if (!stats) {
      missing.push(entry.path);
      continue;
    }
    try {
      if (entry.kind === "symlink") {
        if (!stats.isSymbolicLink()) corrupt.push({ path: entry.path, message: "should be a symlink" });
        else if (hashLinkTarget(hashAlgorithmOf(entry.hash), readLinkText(location)) !== entry.hash) corrupt.push({ path: entry.path, message: "symlink target differs" });
        continue;
      }
      if (!stats.isFile()) {
        corrupt.push({ path: entry.path, message: "is not a regular file" });
        continue;
      }
      let hash = hashByInode.get(stats.ino);
      if (hash === undefined || !hash.startsWith(`${hashAlgorithmOf(entry.hash)}:`)) {
        hash = hashFile(location, hashAlgorithmOf(entry.hash)).hash;
        bytesRead += stats.size;
        if (stats.nlink > 1) hashByInode.set(stats.ino, hash);
      }
      if (stats.size !== entry.size) corrupt.push({ path: entry.path, message: `size ${stats.size}, catalog says ${entry.size}` });
      else if (hash !== entry.hash) corrupt.push({ path: entry.path, message: `hash ${hash}, catalog says ${entry.hash}` });
    } catch (error) {
      // Bytes the storage refuses (a bad sector, an encrypted disk's damaged block): say which, for --repair to rebuild.
      corrupt.push({ path: entry.path, message: isUnreadableData(error) ? describeUnreadable(location, error) : errorMessage(error) });
    }
  }

  const unexpected: string[] = [];
  let deadTempsRemoved = 0;
  const root = disk.root;
  for await (const found of walk([root], { skipPaths: new Set([`${root}/${BLAINE_DIR}`]), signal })) {
    const path = found.path.slice(root.length) || "/";
    if (entries.has(path)) continue;
    // A repair writes its temps beside the file it repairs; one killed with SIGKILL leaves them, and nothing else would remove them.
    if (options.repair && removeDeadTemp(found.path).removed > 0) deadTempsRemoved++;
    else unexpected.push(path);
  }

  const mismatch = entries.disagreementsWithHost(disk.label.diskId);
  return {
    label: disk.label.label,
    // Where the disk is for people: its directory, not an encrypted disk's private mountpoint.
    root: disk.dir,
    files,
    bytesRead,
    missing,
    corrupt,
    repaired: [],
    recopied: [],
    listedForNextRun: false,
    unexpected,
    deadTempsRemoved,
    catalogMismatch: mismatch,
  };
}

function printVerify(result: VerifyResult, output: Output): void {
  for (const disk of result.disks) {
    for (const path of disk.missing) output.say(`MISSING ${quotedPath(path)} on disk "${disk.label}"`);
    for (const item of disk.corrupt) output.say(`CORRUPT ${quotedPath(item.path)} on disk "${disk.label}": ${item.message}`);
    for (const path of disk.unexpected) output.say(`UNEXPECTED ${quotedPath(path)} on disk "${disk.label}" (in no catalog)`);
    if (disk.deadTempsRemoved > 0) {
      const what = disk.deadTempsRemoved > 1 ? `${disk.deadTempsRemoved} temp files of repairs` : "1 temp file of a repair";
      output.say(`removed ${what} killed before they finished, on disk "${disk.label}"`);
    }
    for (const path of disk.catalogMismatch) output.say(`CATALOG MISMATCH ${quotedPath(path)}: host and disk catalogs disagree`);
    for (const path of disk.recopied) output.say(`COPIED AGAIN ${quotedPath(path)} on disk "${disk.label}" from a source that still holds it (hash checked)`);
    if (disk.missing.length + disk.corrupt.length > 0) {
      output.say(
        disk.listedForNextRun
          ? `The next run copies what is missing or damaged on disk "${disk.label}" again, from the sources where they still hold it.`
          : `Run blaine verify --repair to copy what is missing or damaged on disk "${disk.label}" again from the sources.`,
      );
    }
    const problems = disk.missing.length + disk.corrupt.length + disk.unexpected.length + disk.catalogMismatch.length;
    const fixed = disk.repaired.length + disk.recopied.length;
    const repaired = fixed > 0 ? `${fixed} repaired, ` : "";
    output.say(
      `Disk "${disk.label}" (${disk.root}): ${disk.files} files checked, ${formatBytes(disk.bytesRead)} read; ` +
        (problems === 0
          ? `${repaired}all intact${repaired ? " now" : ""}.`
          : `${repaired}${disk.missing.length} missing, ${disk.corrupt.length} corrupt, ${disk.unexpected.length} unexpected, ${disk.catalogMismatch.length} catalog mismatches.`),
    );
  }
  output.result(result);
}
