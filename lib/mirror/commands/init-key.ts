import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, linkSync, openSync, rmSync, statSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import type { Output } from "../../cli/output.ts";
import { crashPoint } from "../../crash-point.ts";
import { BlaineError, ExitCode, errnoCode } from "../../errors.ts";
import { fsyncDirectory } from "../../fs/atomic.ts";
import { tempBeside } from "../../fs/dead-temps.ts";
import type { MirrorConfig } from "../config.ts";

/**
 * `blaine mirror init-key`: 256 random bits as 64 hex digits and a newline
 * (one line, so gocryptfs' -passfile and cryptsetup's --key-file read the
 * same file), mode 0600 from its first byte, never over an existing key.
 */
/**
 * Why the key's directory is unfit, or undefined. Whoever can write to it
 * could swap the key; a group-writable one is allowed (Debian's
 * /usr/local/etc belongs to group staff, and mnemosyne keeps its key there).
 */
function keyDirectoryProblem(parent: string): string | undefined {
  const stat = statSync(parent, { throwIfNoEntry: false });
  if (!stat) return `the directory ${parent} does not exist (make it, mode 0700)`;
  if (!stat.isDirectory()) return `${parent} is not a directory`;
  if ((stat.mode & 0o002) !== 0 && (stat.mode & 0o1000) === 0) return `${parent} is writable by everyone: anyone could replace the key; use a private directory`;
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid && stat.uid !== 0) return `${parent} belongs to uid ${stat.uid}, who could replace the key; use a directory of your own`;
  return undefined;
}

export function initKey(config: MirrorConfig, output: Output): number {
  const keyfile = config.store.keyfile;
  const parent = dirname(keyfile);
  const parentProblem = keyDirectoryProblem(parent);
  if (parentProblem) throw new BlaineError(`store.keyfile: ${parentProblem}`, ExitCode.usage);
  // An init-key killed with SIGKILL left its temp (a key never used, or a second name of the key): nothing else removes it.
  const temp = tempBeside(keyfile).path;
  const fd = openSync(temp, "wx", 0o600);
  try {
    writeSync(fd, `${randomBytes(32).toString("hex")}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  crashPoint("mirror-key-written");
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
