import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, linkSync, openSync, rmSync, statSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { Output } from "../../commands/output.ts";
import { BlaineError, ExitCode, errnoCode } from "../../errors.ts";
import { fsyncDirectory } from "../../fs/atomic.ts";
import type { MirrorConfig } from "../config.ts";

/**
 * `blaine mirror init-key`: 256 random bits as 64 hex digits and a newline
 * (one line, so gocryptfs' -passfile and cryptsetup's --key-file read the
 * same file), mode 0600 from its first byte, never over an existing key.
 */
export function initKey(config: MirrorConfig, output: Output): number {
  const keyfile = config.store.keyfile;
  const parent = dirname(keyfile);
  let parentMode: number;
  try {
    const stat = statSync(parent);
    if (!stat.isDirectory()) throw new BlaineError(`store.keyfile: ${parent} is not a directory`, ExitCode.usage);
    parentMode = stat.mode;
  } catch (error) {
    if (error instanceof BlaineError) throw error;
    throw new BlaineError(`store.keyfile: the directory ${parent} does not exist (make it, mode 0700)`, ExitCode.usage);
  }
  if ((parentMode & 0o002) !== 0 && (parentMode & 0o1000) === 0) {
    throw new BlaineError(`store.keyfile: ${parent} is writable by everyone: anyone could replace the key; use a private directory`, ExitCode.usage);
  }
  const temp = join(parent, `.${basename(keyfile)}.${process.pid}.tmp`);
  const fd = openSync(temp, "wx", 0o600);
  try {
    writeSync(fd, `${randomBytes(32).toString("hex")}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    // link(2) never replaces an existing name: a key that appeared meanwhile is kept.
    linkSync(temp, keyfile);
  } catch (error) {
    if (errnoCode(error) === "EEXIST") throw new BlaineError(`store.keyfile: ${keyfile} already exists; init-key never replaces a key (a store made with it would be lost)`, ExitCode.usage);
    throw error;
  } finally {
    rmSync(temp, { force: true });
  }
  fsyncDirectory(parent);
  output.say(`Key written to ${keyfile} (mode 0600).`);
  output.say("Store a copy somewhere safe, away from the NAS: without it the mirror cannot be read.");
  output.result({ keyfile });
  return ExitCode.ok;
}
