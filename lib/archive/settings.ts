import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { UsageError, errorMessage } from "../errors.ts";
import { HASH_ALGORITHMS, type HashAlgorithm } from "../hashing.ts";
import { parseSize, parseSizeOrPercent, type SizeOrPercent } from "../size.ts";
import { CONFIG_FILE, PRODUCT_TABLES, camel, list, readConfigFile, singleFlag, type Flags } from "../config.ts";
import { MATCH_MODES, type MatchMode } from "./stages/differ.ts";
import { parseParityEngine, parseParityPercent, type ParityEngine } from "./disk/parity-store.ts";

/**
 * Every setting, after blaine.toml and flags are merged (flags win). Config
 * keys are the flag names: `max-delete = "5%"` is `--max-delete 5%`.
 */
export interface Settings {
  readonly configFile: string | undefined;
  readonly db: string | undefined;
  /** Mounted archive disks that must be there (--dest, `dest =`); globs allowed. */
  readonly dest: readonly string[];
  /** Directories or globs where archive disks may be mounted (`--disks`, `disks = [...]`): whichever are mounted are used. */
  readonly disks: readonly string[];
  readonly sources: readonly string[];
  readonly exclude: readonly string[];
  readonly snapraidConf: string | undefined;
  readonly match: MatchMode;
  readonly hash: HashAlgorithm;
  readonly copier: "builtin" | "dc3dd";
  readonly reserve: SizeOrPercent;
  readonly capacity: number | undefined;
  /** A count or a percentage of the archived files; undefined: 10 % or 1000, whichever is smaller. */
  readonly maxDelete: { readonly count: number } | { readonly percent: number } | undefined;
  readonly keepDeleted: boolean;
  /** PAR2 redundancy of archived content in percent (`--parity`, default 10); undefined: off. */
  readonly parity: number | undefined;
  readonly parityEngine: ParityEngine;
  /** Key files of encrypted disks (`--keyfile`, repeatable): each disk opens with the first that fits. */
  readonly keyfiles: readonly string[];
  readonly dryRun: boolean;
  readonly json: boolean;
}

const KNOWN_KEYS = new Set([
  "db", "dest", "sources", "source", "exclude", "snapraid-conf", "match", "hash", "copier",
  "reserve", "capacity", "max-delete", "keep-deleted", "disks", "keyfile",
  "parity", "parity-engine",
]);

/** Reads blaine.toml (or --config FILE) and merges flags over it. */
export function loadSettings(flags: Flags, positionalSources: readonly string[] = [], cwd = process.cwd()): Settings {
  const { file: configFile, config } = readConfigFile(flags, cwd);
  for (const key of Object.keys(config)) {
    if (!KNOWN_KEYS.has(key) && !PRODUCT_TABLES.includes(key) && !key.startsWith("x-")) throw new UsageError(`${configFile}: unknown key "${key}"`);
  }
  const configDir = configFile ? dirname(configFile) : cwd;
  const fromConfig = (key: string) => config[key];
  const pick = (key: string) => (flags[camel(key)] !== undefined ? singleFlag(flags, key) : fromConfig(key));
  // The parsers name the flag; a bad value from the file is named by the file and its key instead.
  const parsed = <T>(key: string, parse: () => T): T => {
    try {
      return parse();
    } catch (error) {
      const fromFile = flags[camel(key)] === undefined && fromConfig(key) !== undefined;
      if (!fromFile || !(error instanceof UsageError) || !error.message.startsWith(`--${key}:`)) throw error;
      throw new UsageError(`${configFile}: ${key}${error.message.slice(key.length + 2)}`);
    }
  };
  // Paths from the config file are relative to it; paths from flags to the working directory.
  const pathOf = (key: string): string[] => {
    const flagValue = flags[camel(key)];
    if (flagValue !== undefined) return list(flagValue).map((path) => resolve(cwd, path));
    return list(fromConfig(key)).map((path) => (isAbsolute(path) ? path : resolve(configDir, path)));
  };

  const sources = positionalSources.length > 0
    ? positionalSources.map((path) => resolve(cwd, path))
    : [...pathOf("sources"), ...pathOf("source")];
  const match = String(pick("match") ?? "inode");
  parsed("match", () => {
    if (!MATCH_MODES.includes(match as MatchMode)) throw new UsageError(`--match: "${match}" is not one of ${MATCH_MODES.join(", ")}`);
  });
  const hash = String(pick("hash") ?? "sha1");
  parsed("hash", () => {
    if (!HASH_ALGORITHMS.includes(hash as HashAlgorithm)) throw new UsageError(`--hash: "${hash}" is not one of ${HASH_ALGORITHMS.join(", ")}`);
  });
  const copier = parsed("copier", () => parseCopier(pick("copier")));
  const capacity = pick("capacity");
  // A path that takes one value: given twice is refused, like every one-value flag.
  const onePath = (key: string) => (singleFlag(flags, key), pathOf(key)[0]);
  const snapraid = onePath("snapraid-conf");

  return {
    configFile,
    db: onePath("db"),
    dest: pathOf("dest"),
    disks: pathOf("disks"),
    sources: sources.map((source) => (source.length > 1 && source.endsWith("/") ? source.slice(0, -1) : source)),
    exclude: [...list(fromConfig("exclude")), ...list(flags.exclude)],
    snapraidConf: snapraid,
    match: match as MatchMode,
    hash: hash as HashAlgorithm,
    copier,
    reserve: parsed("reserve", () => parseSizeOrPercent((pick("reserve") as string | number | undefined) ?? "1%", "--reserve")),
    capacity: capacity === undefined ? undefined : parsed("capacity", () => parseSize(capacity as string, "--capacity")),
    maxDelete: parsed("max-delete", () => parseMaxDelete(pick("max-delete"))),
    keepDeleted: Boolean(pick("keep-deleted") ?? false),
    parity: parsed("parity", () => parseParityPercent(pick("parity"))),
    parityEngine: parsed("parity-engine", () => parseParityEngine(pick("parity-engine"))),
    keyfiles: pathOf("keyfile"),
    dryRun: Boolean(flags.dryRun ?? false),
    json: Boolean(flags.json ?? false),
  };
}

/** How files are copied onto a disk. */
const COPIERS = ["builtin", "dc3dd"] as const;

/** `--copier`: builtin (default) or dc3dd. */
export function parseCopier(value: unknown): Settings["copier"] {
  const copier = String(value ?? "builtin");
  if (!COPIERS.includes(copier as Settings["copier"])) throw new UsageError(`--copier: "${copier}" is not ${COPIERS.join(" or ")}`);
  return copier as Settings["copier"];
}

function parseMaxDelete(value: unknown): Settings["maxDelete"] {
  if (value === undefined) return undefined;
  const text = String(value).trim();
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(text);
  if (percent) return { percent: Number(percent[1]) };
  if (/^\d+$/.test(text)) return { count: Number(text) };
  throw new UsageError(`--max-delete: "${text}" is not a count or a percentage`);
}

export function requireDb(settings: Settings): string {
  if (!settings.db) throw new UsageError(`no catalog: give --db FILE or set db in ${CONFIG_FILE}`);
  return settings.db;
}

export function requireDest(settings: Settings): void {
  if (settings.dest.length === 0 && settings.disks.length === 0) {
    throw new UsageError(`no archive disk: give --dest DIR (or --disks GLOB) or set dest (or disks) in ${CONFIG_FILE}`);
  }
}

/**
 * What `blaine run` lacks when there is no blaine.toml and the flags do not
 * say it all; undefined when it has a catalog, a disk and sources.
 */
export function missingForRun(settings: Settings): string | undefined {
  if (settings.configFile) return undefined;
  const missing = [
    ...(settings.db ? [] : ["no catalog (--db FILE)"]),
    ...(settings.dest.length > 0 || settings.disks.length > 0 ? [] : ["no archive disk (--dest DIR)"]),
    ...(settings.sources.length > 0 ? [] : ["no sources (SOURCE…)"]),
  ];
  return missing.length > 0 ? `${missing.join(", ")} and no ${CONFIG_FILE}` : undefined;
}

/** Exclude patterns from flags, config and the SnapRAID configuration. */
export function excludePatterns(settings: Settings): string[] {
  const patterns = [...settings.exclude];
  if (settings.snapraidConf) {
    let text: string;
    try {
      text = readFileSync(settings.snapraidConf, "utf8");
    } catch (error) {
      throw new UsageError(`--snapraid-conf ${settings.snapraidConf}: ${errorMessage(error)}`);
    }
    for (const line of text.split("\n")) {
      const match = /^\s*exclude\s+(.+?)\s*$/.exec(line);
      if (match) patterns.push(match[1]);
    }
  }
  return patterns;
}
