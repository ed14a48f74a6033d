import { dirname, isAbsolute, resolve } from "node:path";
import { CONFIG_FILE, readConfigTable, singleFlag, type Flags } from "../config.ts";
import { UsageError } from "../errors.ts";
import { parseSize } from "../size.ts";
import { isPostgresUrl } from "./catalog/sql.ts";
import { parseCompression, type Compression } from "./store/chunk-format.ts";
import { isStoreUrl, type S3Settings } from "./store/chunk-store.ts";

/**
 * The settings of `blaine image …`: flags over the `[image]` table of
 * blaine.toml (or --config FILE). S3 credentials come from that table or
 * the environment, never from flags (argv is visible to every user).
 *
 *   [image]
 *   db = "images.db"              # or "postgres://user@host/db"
 *   store = "/srv/images"         # or "s3://bucket/prefix" or "ssh://user@host[:port]/path"
 *   block-size = "4M"
 *   compress = "zstd:3"
 *   keep-days = 6
 *   grace = "1h"
 *   s3-endpoint = "http://127.0.0.1:9000"
 *   s3-region = "us-east-1"
 *   s3-access-key-id = "…"
 *   s3-secret-access-key = "…"
 *   encrypt-keyfile = "/root/images.key"   # or --keyfile: the store is encrypted with the file's first line
 */
export interface ImageSettings {
  readonly configFile: string | undefined;
  /** SQLite file or postgres:// URL; undefined: none given (db-less restore and ls read the store). */
  readonly db: string | undefined;
  readonly store: string | undefined;
  readonly blockSize: number;
  readonly compression: Compression;
  readonly keepDays: number;
  /** Cleanup's grace period in ms. */
  readonly graceMs: number;
  readonly s3: S3Settings;
  /** The key file of an encrypted store (its path; the key is read only when the store is opened). */
  readonly keyfile?: string;
  readonly json: boolean;
}

const KEYS = new Set(["db", "store", "block-size", "compress", "keep-days", "grace", "s3-endpoint", "s3-region", "s3-access-key-id", "s3-secret-access-key", "encrypt-keyfile"]);
export const DEFAULT_BLOCK_SIZE = 4 * 1024 * 1024;

/** "1h", "30m", "45s", "2d", "0" or plain seconds. */
export function parseDuration(text: string | number, option: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(String(text));
  if (!match) throw new UsageError(`${option}: "${text}" is not a duration (like 1h, 30m, 45s, 2d)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(match[2] ?? "s") as "s"];
  return Math.round(Number(match[1]) * unit);
}

/** S3's endpoint and credentials from a config table's s3-* keys, else the environment (never from flags). */
export function s3Settings(table: Record<string, unknown>): S3Settings {
  const secret = (key: string, ...env: string[]) => (table[key] as string | undefined) ?? env.map((name) => process.env[name]).find(Boolean);
  return {
    endpoint: secret("s3-endpoint", "S3_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"),
    region: secret("s3-region", "S3_REGION", "AWS_REGION"),
    accessKeyId: secret("s3-access-key-id", "S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
    secretAccessKey: secret("s3-secret-access-key", "S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
  };
}

export function loadImageSettings(flags: Flags, cwd = process.cwd()): ImageSettings {
  const { file: configFile, table } = readConfigTable(flags, cwd, "image", KEYS);
  const configDir = configFile ? dirname(configFile) : cwd;
  const fromFlag = (key: string) => singleFlag(flags, key);
  const value = (key: string) => fromFlag(key) ?? (table[key] as string | number | undefined);
  // A bad value is named where it was given: the flag, or the key in the file.
  const given = (key: string) => (fromFlag(key) === undefined && table[key] !== undefined ? `${configFile}: ${key} in [image]` : `--${key}`);
  // Paths from flags are relative to the working directory, from the file to the file.
  const location = (key: string): string | undefined => {
    const flag = fromFlag(key);
    if (flag !== undefined) return isPostgresUrl(flag) || isStoreUrl(flag) ? flag : resolve(cwd, flag);
    const configured = table[key];
    if (configured === undefined) return undefined;
    const text = String(configured);
    return isPostgresUrl(text) || isStoreUrl(text) || isAbsolute(text) ? text : resolve(configDir, text);
  };
  const keyfilePath = (): string | undefined => {
    const flag = fromFlag("keyfile");
    if (flag !== undefined) return resolve(cwd, flag);
    const configured = table["encrypt-keyfile"];
    return configured === undefined ? undefined : resolve(configDir, String(configured));
  };
  const blockSize = parseSize(value("block-size") ?? DEFAULT_BLOCK_SIZE, given("block-size"));
  if (blockSize < 4096 || blockSize % 4096 !== 0 || blockSize > 64 * 1024 * 1024) {
    throw new UsageError(`${given("block-size")}: ${blockSize} bytes is not a multiple of 4K between 4K and 64M`);
  }
  const keepDays = Number(value("keep-days") ?? 6);
  if (!Number.isFinite(keepDays) || keepDays < 0) throw new UsageError(`${given("keep-days")}: "${value("keep-days")}" is not a number of days`);
  const compressText = String(value("compress") ?? "zstd:3");
  let compression: Compression;
  try {
    compression = parseCompression(compressText);
  } catch {
    throw new UsageError(`${given("compress")}: "${compressText}" is not zstd:LEVEL (1–22) or none`);
  }
  const store = location("store");
  // Credentials typed into an s3:// URL are refused before anything opens the store or names it in a message.
  // Loaded only for one: a directory's or ssh's command loads none of S3's modules.
  if (store?.startsWith("s3://")) (require("./store/s3-store.ts") as typeof import("./store/s3-store.ts")).parseS3Url(store, given("store"), "image");
  return {
    configFile,
    db: location("db"),
    store,
    blockSize,
    compression,
    keepDays,
    graceMs: parseDuration(value("grace") ?? "1h", given("grace")),
    s3: s3Settings(table),
    keyfile: keyfilePath(),
    json: Boolean(flags.json ?? false),
  };
}

export function requireImageDb(settings: ImageSettings): string {
  if (!settings.db) throw new UsageError(`no image catalog: give --db FILE (or postgres://…) or set db in [image] of ${CONFIG_FILE}`);
  return settings.db;
}

export function requireStore(settings: ImageSettings): string {
  if (!settings.store) throw new UsageError(`no image store: give --store DIR (or s3://bucket/prefix, ssh://user@host/path) or set store in [image] of ${CONFIG_FILE}`);
  return settings.store;
}
