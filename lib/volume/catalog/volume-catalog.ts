import type { ImageSql } from "../../image/catalog/sql.ts";

/**
 * All SQL of the volume archive's own tables (volume_settings,
 * volume_volumes; schema in lib/image/catalog/schema-*.ts, one schema per
 * database). Sessions are image versions: their SQL is ImageCatalog's.
 */
export interface VolumeRow {
  readonly name: string;
  readonly added: number;
  /** The session the volume's snapshot and change map count changes from (null: none; the next send reads it all). */
  readonly trackedSince: string | null;
  readonly changeMap: string | null;
}

/** The keys of volume_settings that are not the archive's settings. */
export const PRUNE_PENDING = "prune-pending";
/** Set by arch-delete before it removes anything: the archive is being deleted, and only arch-delete may open it (to finish). */
export const ARCHIVE_DELETING = "archive-deleting";

function volumeOf(row: Record<string, unknown>): VolumeRow {
  return {
    name: String(row.name),
    added: Number(row.added),
    trackedSince: row.trackedSince === null ? null : String(row.trackedSince),
    changeMap: row.changeMap === null ? null : String(row.changeMap),
  };
}

const VOLUME_COLUMNS = 'name, added, tracked_since AS "trackedSince", change_map AS "changeMap"';

export class VolumeCatalog {
  readonly #sql: ImageSql;

  constructor(sql: ImageSql) {
    this.#sql = sql;
  }

  async settings(): Promise<Record<string, string>> {
    const rows = await this.#sql.all<{ key: string; value: string }>("SELECT key, value FROM volume_settings");
    return Object.fromEntries(rows.map((row) => [row.key, row.value]));
  }

  async setSettings(values: Readonly<Record<string, string>>): Promise<void> {
    await this.#sql.transaction(async (tx) => {
      for (const [key, value] of Object.entries(values)) {
        await tx.run("INSERT INTO volume_settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [key, value]);
      }
    });
  }

  async deleteSetting(key: string): Promise<void> {
    await this.#sql.run("DELETE FROM volume_settings WHERE key = ?", [key]);
  }

  /** Forgets the archive: its settings and volumes (its sessions are removed before, as versions). */
  async forgetArchive(): Promise<void> {
    await this.#sql.transaction(async (tx) => {
      await tx.run("DELETE FROM volume_volumes");
      await tx.run("DELETE FROM volume_settings");
    });
  }

  async volumes(): Promise<VolumeRow[]> {
    return (await this.#sql.all<Record<string, unknown>>(`SELECT ${VOLUME_COLUMNS} FROM volume_volumes ORDER BY name`)).map(volumeOf);
  }

  async volume(name: string): Promise<VolumeRow | undefined> {
    const rows = await this.#sql.all<Record<string, unknown>>(`SELECT ${VOLUME_COLUMNS} FROM volume_volumes WHERE name = ?`, [name]);
    return rows[0] ? volumeOf(rows[0]) : undefined;
  }

  async addVolume(name: string, now = Date.now()): Promise<void> {
    await this.#sql.run("INSERT INTO volume_volumes (name, added, tracked_since, change_map) VALUES (?, ?, NULL, NULL)", [name, now]);
  }

  async removeVolume(name: string): Promise<void> {
    await this.#sql.run("DELETE FROM volume_volumes WHERE name = ?", [name]);
  }

  /** Where a volume's change tracking stands now: counting from `trackedSince`, with these chunks known changed. */
  async setTracking(name: string, trackedSince: string | null, changeMap: string | null): Promise<void> {
    await this.#sql.run("UPDATE volume_volumes SET tracked_since = ?, change_map = ? WHERE name = ?", [trackedSince, changeMap, name]);
  }
}
