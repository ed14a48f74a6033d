import { readFileSync, statSync } from "node:fs";
import { BlaineError, ExitCode, errnoCode, errorMessage } from "../errors.ts";
import type { MirrorConfig } from "./config.ts";

/**
 * The store's key file. LUKS reads the whole file (`--key-file`); gocryptfs
 * is given its first line on stdin, as `gocryptfs -passfile` reads it, so
 * the stock tools open the store with the same file.
 */
export function keyFileProblem(keyfile: string): string | undefined {
  try {
    const stat = statSync(keyfile);
    if (!stat.isFile()) return `${keyfile} is not a file`;
    if ((stat.mode & 0o077) !== 0) return `${keyfile} is readable by others (mode ${(stat.mode & 0o777).toString(8)}); chmod 600 it`;
    if (stat.size === 0) return `${keyfile} is empty`;
    return undefined;
  } catch (error) {
    return errnoCode(error) === "ENOENT" ? `no key file ${keyfile}: run blaine mirror init-key first` : `${keyfile}: ${errorMessage(error)}`;
  }
}

export function requireKeyFile(config: MirrorConfig): void {
  const problem = keyFileProblem(config.store.keyfile);
  if (problem) throw new BlaineError(`store.keyfile: ${problem}`, ExitCode.usage);
}

/** The gocryptfs password: the key file's first line. */
export function gocryptfsPassword(config: MirrorConfig): string {
  requireKeyFile(config);
  const password = readFileSync(config.store.keyfile, "utf8").split("\n")[0];
  if (!password) throw new BlaineError(`store.keyfile: ${config.store.keyfile} has an empty first line (gocryptfs' password)`, ExitCode.usage);
  return password;
}
