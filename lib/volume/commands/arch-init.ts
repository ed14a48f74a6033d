import { existsSync } from "node:fs";
import type { Output } from "../../cli/output.ts";
import { BlaineError, ExitCode, UsageError } from "../../errors.ts";
import { ImageCatalog } from "../../image/catalog/image-catalog.ts";
import { isPostgresUrl, openImageSql } from "../../image/catalog/sql.ts";
import { formatCompression } from "../../image/store/chunk-format.ts";
import { formatBytes } from "../../size.ts";
import { ARCHIVE_DOC, archiveDocText, chunkSizeOf, parseArchiveCompression, parseChunkFactor, settingsRows, type ArchiveSettings } from "../archive-settings.ts";
import { VolumeCatalog } from "../catalog/volume-catalog.ts";
import { createDestination, parseDestination } from "../destination.ts";
import { lockArchive } from "../open-archive.ts";
import { checkSource, sourceKind } from "../sources/change-source.ts";
import type { VolumeSettings } from "../settings.ts";

export interface ArchInitRequest {
  readonly source: string;
  readonly dest: string;
  readonly subdir?: string;
  readonly compression?: string;
  readonly chunkFactor?: string;
  /** --encrypt: the destination encrypted with the key file's first line (settings.keyfile). */
  readonly encrypt?: boolean;
}

/**
 * `blaine volume arch-init --source SOURCE --dest DEST [--subdir DIR]
 * [--compression zstd:N] [--chunk-factor N]`: a new archive's settings, on
 * the destination first (its store made at DEST/SUBDIR, DEST itself must
 * exist) and then in the catalog, which must hold no archive or images
 * (looked at again under the archive's lock as the settings are written:
 * of two arch-inits of one new catalog, the second to get there is refused
 * and takes its document off its destination).
 */
export async function archInit(settings: VolumeSettings, request: ArchInitRequest, output: Output): Promise<ExitCode> {
  checkSource(request.source);
  // A thin pool is checked now, not at the first add: an archive of a source this machine cannot read is no archive.
  if (sourceKind(request.source) === "lvm") await (await import("../sources/lvm-thin.ts")).checkThinPool(request.source);
  if (request.encrypt && !settings.keyfile) throw new UsageError("--encrypt needs --keyfile FILE (its first line is the key; it is never stored)");
  if (!request.encrypt && settings.keyfile) throw new UsageError("--keyfile without --encrypt: give --encrypt to encrypt the destination");
  const destination = parseDestination(request.dest, request.subdir ?? "");
  const archive: ArchiveSettings = {
    uid: crypto.randomUUID(),
    source: request.source,
    dest: request.dest,
    subdir: request.subdir ?? "",
    compression: parseArchiveCompression(request.compression),
    chunkFactor: parseChunkFactor(request.chunkFactor),
    created: Date.now(),
    encrypted: Boolean(request.encrypt),
    ...(request.encrypt ? { keyfile: settings.keyfile } : {}),
  };
  // The catalog is looked at first where it exists, and written last: made (if new) only once the destination holds
  // the archive, so a destination that is not there leaves nothing behind, not even a catalog file.
  if (isPostgresUrl(settings.db) || existsSync(settings.db)) await withArchiveTables(settings.db, refuseUsed);
  const store = await createDestination(destination, settings.s3, request.encrypt ? settings.keyfile : undefined);
  try {
    await store.putMetaDoc(ARCHIVE_DOC, archiveDocText(archive));
    try {
      // Looked at again under the archive's lock: another arch-init of the same new catalog may have finished
      // meanwhile. Its archive stays; this one's document goes, so the destination can take an archive again.
      await withArchiveTables(settings.db, async (catalog, volumes) => {
        const release = await lockArchive(catalog);
        try {
          await refuseUsed(catalog, volumes);
          await volumes.setSettings(settingsRows(archive));
        } finally {
          await release();
        }
      });
    } catch (error) {
      await store.deleteMetaDoc(ARCHIVE_DOC).catch(() => {});
      throw error;
    }
  } finally {
    await store.close();
  }
  const chunkSize = chunkSizeOf(archive);
  output.say(
    `volume archive of ${archive.source} initialised at ${destination.spec}: chunks of ${formatBytes(chunkSize)}, ${formatCompression(archive.compression)}${archive.encrypted ? ", encrypted" : ""}; blaine volume add NAME adds volumes`,
  );
  output.result({ uid: archive.uid, source: archive.source, dest: archive.dest, subdir: archive.subdir, store: destination.spec, chunkSize, compression: formatCompression(archive.compression), encrypted: archive.encrypted });
  return ExitCode.ok;
}

/** Runs `fn` on the catalog at `db` (made if new) and its volume tables, then closes it (arch-init's: no archive to open yet). */
async function withArchiveTables(db: string, fn: (catalog: ImageCatalog, volumes: VolumeCatalog) => Promise<void>): Promise<void> {
  const sql = await openImageSql(db, { create: true });
  const catalog = new ImageCatalog(sql);
  try {
    await fn(catalog, new VolumeCatalog(sql));
  } finally {
    await catalog.close();
  }
}

/** Refuses a catalog that holds an archive already, or image versions (a volume archive's chunks are counted per catalog). */
async function refuseUsed(catalog: ImageCatalog, volumes: VolumeCatalog): Promise<void> {
  const existing = await volumes.settings();
  if (existing.uid !== undefined) throw new BlaineError(`${catalog.name} already holds a volume archive (of ${existing.source} to ${existing.dest}); give another --db`, ExitCode.usage);
  if ((await catalog.versions()).length > 0) {
    throw new BlaineError(`${catalog.name} holds image versions; a volume archive needs a catalog of its own (its chunks are counted per catalog): give another --db`, ExitCode.usage);
  }
}
