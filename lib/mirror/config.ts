import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { UsageError, errnoCode, errorMessage } from "../errors.ts";
import { parseSize } from "../size.ts";

/**
 * A mirror's configuration: mnemosyne's JSON file, accepted as it is, plus
 * a few optional keys of Blaine's own (store.encryption, local.exclude,
 * remote.options). Every error names the key path at fault.
 */
export type MirrorEncryption = "luks" | "gocryptfs";

export interface CifsRemote {
  readonly type: "cifs";
  /** `//host/share`, or mnemosyne's `\\host\share` (backslashes doubled in the JSON). */
  readonly volume: string;
  readonly username: string;
  readonly password: string;
  /** Extra mount options (`vers=3.0,…`), appended to Blaine's. */
  readonly options?: string;
}

export interface BlockRemote {
  readonly type: "block";
  /** A device path, `UUID=…` or `LABEL=…` of the file system holding the image. */
  readonly device: string;
  readonly options?: string;
}

export type MirrorRemote = CifsRemote | BlockRemote;

export interface MirrorDirectory {
  /** The subvolume's name and the prefix of its snapshots' names. */
  readonly key: string;
  /** The local directory mirrored into it (absolute). */
  readonly directory: string;
}

export interface MirrorConfig {
  /** The configuration file, absolute. */
  readonly file: string;
  readonly remote: MirrorRemote;
  readonly store: {
    /** The image file's name on the remote file system. */
    readonly name: string;
    /** The image's initial size in bytes. */
    readonly sizeBytes: number;
    /** The key file (absolute; relative names are taken from the configuration's directory). */
    readonly keyfile: string;
    readonly encryption: MirrorEncryption;
  };
  readonly strategy: {
    /** Snapshots kept per directory key. */
    readonly stages: number;
    /** Hours between rotations. */
    readonly rotateHours: number;
  };
  readonly local: {
    readonly directories: readonly MirrorDirectory[];
    /** rsync exclude patterns, for every directory. */
    readonly exclude: readonly string[];
  };
}

/** mnemosyne's `store.size` is a number of GiB (it runs `truncate -s {size}G`). */
const GIB = 1024 ** 3;

/** A directory key names a subvolume and starts its snapshots' names: no slash, no leading dot, nothing a shell or mount option would mangle. */
const KEY_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/;

type Json = Record<string, unknown>;

class ConfigReader {
  constructor(readonly file: string) {}

  fail(path: string, message: string): never {
    throw new UsageError(`${this.file}: ${path || "the top level"}: ${message}`);
  }

  object(value: unknown, path: string, allowed: readonly string[]): Json {
    if (typeof value !== "object" || value === null || Array.isArray(value)) this.fail(path, "expected an object");
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) this.fail(path ? `${path}.${key}` : key, `unknown key (known here: ${allowed.join(", ")})`);
    }
    return value as Json;
  }

  string(parent: Json, path: string, key: string, what = "a string"): string {
    const value = parent[key];
    if (value === undefined) this.fail(`${path}.${key}`, `missing (expected ${what})`);
    if (typeof value !== "string" || value === "") this.fail(`${path}.${key}`, `expected ${what}`);
    return value;
  }

  optionalString(parent: Json, path: string, key: string, what = "a string"): string | undefined {
    return parent[key] === undefined ? undefined : this.string(parent, path, key, what);
  }

  positiveNumber(parent: Json, path: string, key: string, what: string, integer: boolean): number {
    const value = parent[key];
    if (value === undefined) this.fail(`${path}.${key}`, `missing (expected ${what})`);
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) this.fail(`${path}.${key}`, `expected ${what}`);
    return value;
  }
}

export function parseMirrorConfig(text: string, file: string): MirrorConfig {
  // Typed explicitly: TypeScript follows `never`-returning methods (fail) only through annotated names.
  const reader: ConfigReader = new ConfigReader(file);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${file}: not valid JSON: ${errorMessage(error)}`);
  }
  const top = reader.object(data, "", ["remote", "store", "strategy", "local"]);
  for (const section of ["remote", "store", "strategy", "local"]) if (top[section] === undefined) reader.fail(section, "missing");

  const remoteJson = reader.object(top.remote, "remote", ["type", "volume", "username", "password", "device", "block", "options"]);
  const type = remoteJson.type;
  let remote: MirrorRemote;
  const options = reader.optionalString(remoteJson, "remote", "options", "mount options as a string");
  if (type === "cifs") {
    for (const key of ["device", "block"]) if (remoteJson[key] !== undefined) reader.fail(`remote.${key}`, `not used by a cifs remote`);
    remote = {
      type,
      volume: reader.string(remoteJson, "remote", "volume", "the share as //host/share or \\\\host\\share"),
      username: reader.string(remoteJson, "remote", "username"),
      password: reader.string(remoteJson, "remote", "password"),
      ...(options ? { options } : {}),
    };
  } else if (type === "block") {
    for (const key of ["volume", "username", "password"]) if (remoteJson[key] !== undefined) reader.fail(`remote.${key}`, `not used by a block remote`);
    if (remoteJson.device !== undefined && remoteJson.block !== undefined) reader.fail("remote.block", "give remote.device or remote.block, not both");
    const key = remoteJson.device !== undefined ? "device" : "block";
    remote = { type, device: reader.string(remoteJson, "remote", key, "a device path, UUID=… or LABEL=…"), ...(options ? { options } : {}) };
  } else {
    reader.fail("remote.type", `expected "cifs" or "block"`);
  }

  const storeJson = reader.object(top.store, "store", ["name", "size", "keyfile", "encryption"]);
  const name = reader.string(storeJson, "store", "name", "the image file's name");
  if (name.includes("/") || name === "." || name === "..") reader.fail("store.name", "expected a file name (no slash)");
  const size = storeJson.size;
  let sizeBytes: number;
  if (typeof size === "number") {
    if (!Number.isFinite(size) || size <= 0) reader.fail("store.size", "expected a size: GiB as a number, or a SIZE like 2T");
    sizeBytes = Math.floor(size * GIB);
  } else if (typeof size === "string") {
    try {
      sizeBytes = parseSize(size, "store.size");
    } catch {
      reader.fail("store.size", `"${size}" is not a size (GiB as a number, or a SIZE like 500G or 2T)`);
    }
    if (sizeBytes <= 0) reader.fail("store.size", "expected a size above zero");
  } else {
    reader.fail("store.size", size === undefined ? "missing (expected GiB as a number, or a SIZE like 2T)" : "expected a size: GiB as a number, or a SIZE like 2T");
  }
  const keyfileText = reader.string(storeJson, "store", "keyfile", "the key file's path");
  const keyfile = isAbsolute(keyfileText) ? keyfileText : resolve(dirname(file), keyfileText);
  const encryption = storeJson.encryption ?? "luks";
  if (encryption !== "luks" && encryption !== "gocryptfs") reader.fail("store.encryption", `expected "luks" or "gocryptfs"`);

  const strategyJson = reader.object(top.strategy, "strategy", ["stages", "rotate"]);
  const stages = reader.positiveNumber(strategyJson, "strategy", "stages", "the number of snapshots kept, a whole number above 0", true);
  const rotateHours = reader.positiveNumber(strategyJson, "strategy", "rotate", "hours as a number", false);

  const localJson = reader.object(top.local, "local", ["directories", "exclude"]);
  if (!Array.isArray(localJson.directories)) reader.fail("local.directories", localJson.directories === undefined ? "missing (expected a list)" : "expected a list");
  if ((localJson.directories as unknown[]).length === 0) reader.fail("local.directories", "expected at least one directory");
  const seen = new Set<string>();
  const directories = (localJson.directories as unknown[]).map((entry, index): MirrorDirectory => {
    const path = `local.directories[${index}]`;
    const item = reader.object(entry, path, ["key", "directory"]);
    const key = reader.string(item, path, "key");
    if (!KEY_PATTERN.test(key)) reader.fail(`${path}.key`, `"${key}" must be letters, digits, _ . + - (it names a subvolume)`);
    if (seen.has(key)) reader.fail(`${path}.key`, `"${key}" is used twice`);
    seen.add(key);
    const directory = reader.string(item, path, "directory", "a directory path");
    return { key, directory: resolve(dirname(file), directory) };
  });
  let exclude: string[] = [];
  if (localJson.exclude !== undefined) {
    if (!Array.isArray(localJson.exclude) || !localJson.exclude.every((pattern) => typeof pattern === "string" && pattern !== "")) {
      reader.fail("local.exclude", "expected a list of rsync patterns (strings)");
    }
    exclude = localJson.exclude as string[];
  }

  return {
    file,
    remote,
    store: { name, sizeBytes, keyfile, encryption },
    strategy: { stages, rotateHours },
    local: { directories, exclude },
  };
}

/** Reads and checks a configuration file (`--config`/`-c`). */
export function loadMirrorConfig(file: string | undefined): MirrorConfig {
  if (!file) throw new UsageError("blaine mirror needs its configuration: --config FILE.json (or -c FILE.json)");
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(`--config ${file}: ${errnoCode(error) === "ENOENT" ? "no such file" : errorMessage(error)}`);
  }
  return parseMirrorConfig(text, path);
}

/** The configuration as it may be shown (verify-environment, --json): the CIFS password masked. */
export function maskedConfig(config: MirrorConfig): unknown {
  const remote = config.remote.type === "cifs" ? { ...config.remote, password: "********" } : config.remote;
  return { ...config, remote };
}

/** mnemosyne writes the share the Windows way (`\\host\share`); mount.cifs wants `//host/share`. */
export function cifsShare(volume: string): string {
  return volume.replaceAll("\\", "/");
}
