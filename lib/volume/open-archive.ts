import { BlaineError, ExitCode, UsageError } from "../errors.ts";
import { ImageCatalog } from "../image/catalog/image-catalog.ts";
import { openImageSql } from "../image/catalog/sql.ts";
import type { ImageSettings } from "../image/settings.ts";
import type { ChunkStore } from "../image/store/chunk-store.ts";
import { chunkSizeOf, settingsFromRows, type ArchiveSettings } from "./archive-settings.ts";
import { ARCHIVE_DELETING, VolumeCatalog, type VolumeRow } from "./catalog/volume-catalog.ts";
import { openDestination, parseDestination } from "./destination.ts";
import { pendingRemoval, removeSessions } from "./remove-sessions.ts";
import { ARCHIVE_LABEL, sessionsOf } from "./sessions.ts";
import type { VolumeSettings } from "./settings.ts";
import type { VersionRow } from "../image/catalog/image-catalog.ts";

/** An archive opened for one command: its catalog, settings, destination (when the command needs it). */
export interface OpenArchive {
  readonly settings: VolumeSettings;
  readonly archive: ArchiveSettings;
  readonly catalog: ImageCatalog;
  readonly volumes: VolumeCatalog;
  readonly chunkSize: number;
  /** The destination's store (commands that read or write data). */
  readonly store: ChunkStore;
  /** An arch-delete was begun (and killed): the archive is being deleted. */
  readonly deleting: boolean;
  /** The same archive as `blaine image` settings (to run image commands on it). */
  readonly imageSettings: ImageSettings;
  /** A volume the user named (usage error when the archive has no such volume). */
  requireVolume(name: string): Promise<VolumeRow>;
  /** A volume's finished sessions, oldest first. */
  sessions(name: string): Promise<VersionRow[]>;
}

export interface OpenOptions {
  /** Open the destination (every verb that reads or writes data, or removes sessions). */
  readonly store: boolean;
  /** Take the archive's lock: one writing command at a time. */
  readonly write: boolean;
  /** arch-delete: opens an archive an interrupted arch-delete left (to finish it); every other command refuses one. */
  readonly deleting?: boolean;
}

/** The archive's lock: one writing volume command (or arch-init) at a time per catalog; refused while another holds it. */
export async function lockArchive(catalog: ImageCatalog): Promise<() => Promise<void>> {
  const release = await catalog.sql.tryLock("volume");
  if (!release) throw new BlaineError(`another blaine volume command is working on ${catalog.name}; try again when it has finished`, ExitCode.failure);
  return release;
}

/**
 * Opens the archive of --db for one command and runs `fn`. A writing
 * command holds the archive's lock (a lock file beside an SQLite catalog,
 * an advisory lock on PostgreSQL) and first recovers what a killed command
 * left: a removal it had begun (finished now), the sessions of a killed send
 * (incomplete versions, removed with their chunks).
 */
export async function withArchive<T>(settings: VolumeSettings, options: OpenOptions, fn: (open: OpenArchive) => Promise<T>): Promise<T> {
  const sql = await openImageSql(settings.db, { create: false }).catch((error) => {
    throw error instanceof BlaineError && /does not exist/.test(error.message)
      ? new BlaineError(`no volume archive at --db ${settings.db}: blaine volume arch-init --source … --dest … creates one`, ExitCode.usage)
      : error;
  });
  const catalog = new ImageCatalog(sql);
  let release: (() => Promise<void>) | undefined;
  let store: ChunkStore | undefined;
  try {
    const volumes = new VolumeCatalog(sql);
    const rows = await volumes.settings();
    if (rows.uid === undefined) throw new BlaineError(`${catalog.name} holds no volume archive: blaine volume arch-init --source … --dest … creates one`, ExitCode.usage);
    const archive = settingsFromRows(rows, catalog.name);
    const deleting = rows[ARCHIVE_DELETING] !== undefined;
    if (deleting && !options.deleting) {
      throw new BlaineError(`the volume archive of ${catalog.name} (${archive.source} to ${archive.dest}) is being deleted: an arch-delete was interrupted; blaine volume arch-delete finishes it`, ExitCode.usage);
    }
    if (options.write) {
      release = await lockArchive(catalog);
    }
    // A key for an archive that has none is a mistake about which archive this is, not a key to pass over.
    if (settings.keyfile && !archive.encrypted) throw new UsageError(`the archive at ${archive.dest} is not encrypted: leave out --keyfile`);
    const keyfile = settings.keyfile ?? archive.keyfile;
    store = options.store ? await openDestination(archive, settings.s3, keyfile, deleting) : undefined;
    const open: OpenArchive = {
      settings,
      archive,
      catalog,
      volumes,
      chunkSize: chunkSizeOf(archive),
      deleting,
      store: store as ChunkStore,
      imageSettings: {
        configFile: settings.configFile,
        db: settings.db,
        store: parseDestination(archive.dest, archive.subdir).spec,
        blockSize: chunkSizeOf(archive),
        compression: archive.compression,
        keepDays: 0,
        graceMs: 0,
        s3: settings.s3,
        ...(archive.encrypted && keyfile ? { keyfile } : {}),
        json: settings.json,
      },
      async requireVolume(name) {
        const row = await volumes.volume(name);
        if (!row) throw new BlaineError(`the archive has no volume "${name}" (blaine volume list shows them; add NAME adds one)`, ExitCode.usage);
        return row;
      },
      async sessions(name) {
        return sessionsOf(await catalog.versions(name), archive.uid);
      },
    };
    if (options.write && options.store) await recover(open);
    return await fn(open);
  } finally {
    // The ssh store's one connection ends with the command.
    await store?.close().catch(() => {});
    await release?.();
    await catalog.close();
  }
}

/** What killed commands left: a removal to finish, sends whose versions stayed incomplete. */
async function recover(open: OpenArchive): Promise<void> {
  const { catalog, archive } = open;
  const killed = (await catalog.versions()).filter(
    (version) => version.labels[ARCHIVE_LABEL] === archive.uid && version.status === "incomplete",
  );
  // The archive's lock is ours, so no send of this archive is running: incomplete sessions are a killed send's.
  // Their claims stay until the removal: they turn the chunks it stored but never recorded into candidates.
  const pending = await pendingRemoval(open.volumes);
  if (killed.length > 0 || pending.length > 0) {
    await removeSessions(catalog, open.volumes, open.store, killed.map((version) => version.uid));
  }
}
