import { dirname, isAbsolute, resolve } from "node:path";
import { CONFIG_FILE, readConfigTable, singleFlag, type Flags } from "../config.ts";
import { UsageError } from "../errors.ts";
import { isPostgresUrl } from "../image/catalog/sql.ts";
import { s3Settings } from "../image/settings.ts";
import type { S3Settings } from "../image/store/chunk-store.ts";

/**
 * The settings of `blaine volume …` that are the user's, not the
 * archive's: where the catalog is (flags over the `[volume]` table of
 * blaine.toml or --config FILE) and S3 credentials (that table or the
 * environment, never argv). The archive's own settings (source,
 * destination, chunk size, compression) are in the catalog and on the
 * destination, written by arch-init.
 *
 *   [volume]
 *   db = "volumes.db"               # or "postgres://user@host/db"
 *   s3-endpoint = "http://127.0.0.1:9000"
 *   s3-region = "us-east-1"
 *   s3-access-key-id = "…"
 *   s3-secret-access-key = "…"
 */
export interface VolumeSettings {
  readonly configFile: string | undefined;
  /** SQLite file or postgres:// URL. */
  readonly db: string;
  readonly s3: S3Settings;
  readonly json: boolean;
  /** -u/--unattended: ask nothing (delete, arch-delete). */
  readonly unattended: boolean;
  /** --keyfile FILE: an encrypted archive's key file (arch-init; later, instead of the path arch-init recorded). */
  readonly keyfile: string | undefined;
}

const KEYS = new Set(["db", "s3-endpoint", "s3-region", "s3-access-key-id", "s3-secret-access-key"]);

export function loadVolumeSettings(flags: Flags, cwd = process.cwd()): VolumeSettings {
  const { file: configFile, table } = readConfigTable(flags, cwd, "volume", KEYS);
  const flagDb = singleFlag(flags, "db");
  if (table.db !== undefined && typeof table.db !== "string") throw new UsageError(`${configFile}: db in [volume] must be a string (a file or postgres://…), not ${JSON.stringify(table.db)}`);
  const configured = table.db;
  // Paths from flags are relative to the working directory, from the file to the file.
  const db =
    flagDb !== undefined
      ? isPostgresUrl(flagDb) ? flagDb : resolve(cwd, flagDb)
      : configured !== undefined
        ? isPostgresUrl(configured) || isAbsolute(configured) ? configured : resolve(dirname(configFile as string), configured)
        : undefined;
  if (!db) throw new UsageError(`no volume archive catalog: give --db FILE (or postgres://…) or set db in [volume] of ${configFile ?? CONFIG_FILE}`);
  return {
    configFile,
    db,
    s3: s3Settings(table),
    json: Boolean(flags.json ?? false),
    unattended: Boolean(flags.unattended ?? flags.u ?? false),
    keyfile: singleFlag(flags, "keyfile") === undefined ? undefined : resolve(cwd, singleFlag(flags, "keyfile") as string),
  };
}
