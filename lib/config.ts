import { UsageError } from "./errors.ts";

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
