import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { CONFIG_FILE, singleFlag, type Flags } from "../config.ts";
import { BlaineError, ExitCode, UsageError, errorMessage } from "../errors.ts";
import { isPostgresUrl } from "../image/catalog/sql.ts";
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
  const explicit = singleFlag(flags, "config");
  const configFile = explicit ? resolve(cwd, explicit) : existsSync(resolve(cwd, CONFIG_FILE)) ? resolve(cwd, CONFIG_FILE) : undefined;
  let table: Record<string, unknown> = {};
  if (configFile) {
    if (!existsSync(configFile)) throw new UsageError(`--config ${explicit}: no such file`);
    let config: Record<string, unknown>;
    try {
      config = Bun.TOML.parse(readFileSync(configFile, "utf8")) as Record<string, unknown>;
    } catch (error) {
      throw new BlaineError(`${configFile}: not valid TOML: ${errorMessage(error)}`, ExitCode.usage);
    }
    table = (config.volume ?? {}) as Record<string, unknown>;
    for (const key of Object.keys(table)) if (!KEYS.has(key)) throw new UsageError(`${configFile}: unknown key "${key}" in [volume]`);
  }
  const flagDb = singleFlag(flags, "db");
  const configured = table.db === undefined ? undefined : String(table.db);
  // Paths from flags are relative to the working directory, from the file to the file.
  const db =
    flagDb !== undefined
      ? isPostgresUrl(flagDb) ? flagDb : resolve(cwd, flagDb)
      : configured !== undefined
        ? isPostgresUrl(configured) || isAbsolute(configured) ? configured : resolve(dirname(configFile as string), configured)
        : undefined;
  if (!db) throw new UsageError(`no volume archive catalog: give --db FILE (or postgres://…) or set db in [volume] of ${configFile ?? CONFIG_FILE}`);
  const secret = (key: string, ...env: string[]) => (table[key] as string | undefined) ?? env.map((name) => process.env[name]).find(Boolean);
  return {
    configFile,
    db,
    s3: {
      endpoint: secret("s3-endpoint", "S3_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"),
      region: secret("s3-region", "S3_REGION", "AWS_REGION"),
      accessKeyId: secret("s3-access-key-id", "S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
      secretAccessKey: secret("s3-secret-access-key", "S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
    },
    json: Boolean(flags.json ?? false),
    unattended: Boolean(flags.unattended ?? flags.u ?? false),
    keyfile: singleFlag(flags, "keyfile") === undefined ? undefined : resolve(cwd, singleFlag(flags, "keyfile") as string),
  };
}
