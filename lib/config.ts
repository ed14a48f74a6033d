import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { BlaineError, ExitCode, UsageError, errorMessage } from "./errors.ts";

/** What every product's command line shares: the config file's name and reading flags as cac gives them. */

/** The file looked for in the working directory when --config is not given. */
export const CONFIG_FILE = "blaine.toml";

/** Flags as cac parses them (kebab-case keys are camelCased by cac). */
export type Flags = Record<string, unknown>;

/** cac camelCases kebab-case flags. */
export function camel(key: string): string {
  return key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** A flag or key that may be given once or repeated, as a list (absent or false: empty). */
export function list(value: unknown): string[] {
  if (value === undefined || value === null || value === false) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

/**
 * A flag that takes one value. cac turns a flag given twice into a list:
 * that is a usage error here, not a silent pick of one of them.
 */
export function singleFlag(flags: Flags, name: string): string | undefined {
  const value = flags[camel(name)];
  if (Array.isArray(value)) throw new UsageError(`--${name} was given ${value.length} times; it takes one value`);
  return value === undefined || value === false ? undefined : value === true ? "true" : String(value);
}

/** The tables of blaine.toml that products other than the file archive own ([image], [volume]). */
export const PRODUCT_TABLES: readonly string[] = ["image", "volume"];

/**
 * blaine.toml from the working directory, or --config FILE, parsed; no file
 * and no --config: nothing. Errors name the file.
 */
export function readConfigFile(flags: Flags, cwd: string): { readonly file: string | undefined; readonly config: Record<string, unknown> } {
  const explicit = singleFlag(flags, "config");
  const file = explicit ? resolve(cwd, explicit) : existsSync(resolve(cwd, CONFIG_FILE)) ? resolve(cwd, CONFIG_FILE) : undefined;
  if (!file) return { file, config: {} };
  if (!existsSync(file)) throw new UsageError(`--config ${explicit}: no such file`);
  try {
    return { file, config: Bun.TOML.parse(readFileSync(file, "utf8")) as Record<string, unknown> };
  } catch (error) {
    throw new BlaineError(`${file}: not valid TOML: ${errorMessage(error)}`, ExitCode.usage);
  }
}

/** A product's table of the config file (`[image]`, `[volume]`), every key in it one of `keys`. */
export function readConfigTable(flags: Flags, cwd: string, name: string, keys: ReadonlySet<string>): { readonly file: string | undefined; readonly table: Record<string, unknown> } {
  const { file, config } = readConfigFile(flags, cwd);
  const table = (config[name] ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(table)) if (!keys.has(key)) throw new UsageError(`${file}: unknown key "${key}" in [${name}]`);
  return { file, table };
}
