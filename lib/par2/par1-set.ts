/**
 * A PAR 1.0 set (SET.par and SET.p01 … SET.pNN) loaded and checked against
 * the files it protects. PAR1 knows whole files only: a file is complete
 * (size, MD5 of its first 16 KiB and of the whole) or it needs one recovery
 * volume; any file given on the command line that is a complete copy of a
 * listed file (renamed) counts as that file.
 */
import { closeSync, existsSync, openSync, readdirSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { equalBytes } from "./packets.ts";
import { IN_PARITY, isPar1Name, PAR1_FIRST_BYTES, Par1FormatError, readPar1File, type Par1Entry, type Par1File } from "./par1-format.ts";
import { readAt } from "./read-at.ts";
import { RecoverySetError } from "./recovery-set.ts";

export interface Par1Volume {
  /** 1 for SET.p01 … */
  readonly volume: number;
  readonly path: string;
  readonly dataOffset: number;
}

export interface Par1Set {
  readonly setPath: string;
  /** The files in the recovery data, in file-list order (their index is their place in the code). */
  readonly files: readonly Par1Entry[];
  /** Listed for checking only (status bit 0 clear): par2cmdline leaves them out, and so does Blaine. */
  readonly checkedOnly: readonly Par1Entry[];
  /** One recovery block's length: the largest listed file's size. */
  readonly blockSize: number;
  /** Intact recovery volumes, in volume order, one per number. */
  readonly volumes: readonly Par1Volume[];
  /** Every file of the set found on disk (index and volumes), for -p. */
  readonly parFiles: readonly string[];
  /** Files of the set that could not be used, with the reason. */
  readonly unusable: readonly { readonly path: string; readonly reason: string }[];
  readonly firstHashesValid: boolean;
}

/**
 * The set's files beside `setPath`: every `BASE.???` with a PAR1 extension
 * (`.par`, `.pNN`), as par2cmdline looks for them, plus any such file among
 * `extra` (a volume renamed or kept elsewhere).
 */
function par1FilesOf(setPath: string, extra: readonly string[]): string[] {
  const directory = dirname(setPath);
  const base = basename(setPath).replace(/\.[^.]*$/, "");
  const siblings = readdirSync(directory)
    .filter((name) => name.length === base.length + 4 && name.startsWith(`${base}.`) && isPar1Name(name))
    .sort()
    .map((name) => join(directory, name));
  const all = [setPath, ...siblings, ...extra.filter((file) => isPar1Name(file) && existsSync(file))];
  return [...new Map(all.map((path) => [resolve(path), path])).values()];
}

export function loadPar1Set(setPath: string, extra: readonly string[] = []): Par1Set {
  const parFiles: string[] = [];
  const unusable: { path: string; reason: string }[] = [];
  let first: Par1File | undefined;
  const volumes = new Map<number, Par1Volume>();
  for (const path of par1FilesOf(setPath, extra)) {
    let file: Par1File;
    try {
      file = readPar1File(path);
    } catch (error) {
      if (!(error instanceof Par1FormatError) && (error as NodeJS.ErrnoException)?.code !== "EISDIR") throw error;
      parFiles.push(path);
      unusable.push({ path, reason: error instanceof Error ? error.message.replace(`${path}: `, "") : String(error) });
      continue;
    }
    parFiles.push(path);
    first ??= file;
    if (!equalBytes(file.fileList, first.fileList) || !equalBytes(file.setHash, first.setHash)) {
      unusable.push({ path, reason: "it belongs to another set (its file list differs)" });
      continue;
    }
    if (file.volume === 0) continue;
    const blockSize = Math.max(...first.entries.map((entry) => entry.size));
    if (file.dataSize !== blockSize || file.dataOffset === 0) {
      unusable.push({ path, reason: `its recovery data is ${file.dataSize} bytes, not the ${blockSize} of the set's largest file` });
      continue;
    }
    if (!volumes.has(file.volume)) volumes.set(file.volume, { volume: file.volume, path, dataOffset: file.dataOffset });
  }
  if (!first) {
    const why = unusable.map(({ path, reason }) => `${basename(path)}: ${reason}`).join("; ");
    throw new RecoverySetError(`${setPath}: no intact PAR 1.0 file in the set${why ? ` (${why})` : ""}`);
  }
  const files = first.entries.filter((entry) => entry.status & IN_PARITY);
  if (files.length > 255) throw new RecoverySetError(`${setPath}: lists ${files.length} files in its recovery data; PAR 1.0 allows 255`);
  return {
    setPath,
    files,
    checkedOnly: first.entries.filter((entry) => !(entry.status & IN_PARITY)),
    blockSize: Math.max(...first.entries.map((entry) => entry.size)),
    volumes: [...volumes.values()].sort((a, b) => a.volume - b.volume),
    parFiles,
    unusable,
    firstHashesValid: first.firstHashesValid,
  };
}

export type Par1FileStatus = "found" | "renamed" | "damaged" | "missing";

export interface Par1FileCheck {
  readonly entry: Par1Entry;
  /** Where the file belongs: the set's directory (or the base path) and its name. */
  readonly path: string;
  readonly status: Par1FileStatus;
  /** For `found` and `renamed`: the file holding its complete content. */
  readonly source?: string;
}

export interface Par1Check {
  readonly set: Par1Set;
  readonly files: readonly Par1FileCheck[];
  /** Extra files that matched no listed file. */
  readonly unmatched: readonly string[];
  /** Files that need a recovery volume (damaged or missing, not found under another name). */
  readonly needed: number;
  readonly repairable: boolean;
}

interface Fingerprint {
  readonly size: number;
  readonly md5First16k: Uint8Array;
  readonly md5: Uint8Array;
}

/** Size, MD5 of the first 16 KiB and of the whole file, from one read (undefined: not a regular file). */
function fingerprint(path: string, sizes: ReadonlySet<number>): Fingerprint | undefined {
  let size: number;
  try {
    const stats = statSync(path);
    if (!stats.isFile()) return undefined;
    size = stats.size;
  } catch {
    return undefined;
  }
  // A file no entry has the size of matches none: not read at all.
  if (!sizes.has(size)) return { size, md5First16k: new Uint8Array(16), md5: new Uint8Array(16) };
  const fd = openSync(path, "r");
  try {
    const buffer = new Uint8Array(Math.max(PAR1_FIRST_BYTES, Math.min(size, 1 << 20)));
    const firstLength = readAt(fd, buffer, Math.min(PAR1_FIRST_BYTES, size), 0);
    const md5First16k = new Uint8Array(new Bun.CryptoHasher("md5").update(buffer.subarray(0, firstLength)).digest().buffer);
    const whole = new Bun.CryptoHasher("md5").update(buffer.subarray(0, firstLength));
    for (let offset = firstLength; offset < size; ) {
      const got = readAt(fd, buffer, Math.min(buffer.length, size - offset), offset);
      if (got === 0) break;
      whole.update(buffer.subarray(0, got));
      offset += got;
    }
    return { size, md5First16k, md5: new Uint8Array(whole.digest().buffer) };
  } finally {
    closeSync(fd);
  }
}

function matches(entry: Par1Entry, print: Fingerprint, firstHashesValid: boolean): boolean {
  return print.size === entry.size && (!firstHashesValid || equalBytes(print.md5First16k, entry.md5First16k)) && equalBytes(print.md5, entry.md5);
}

/**
 * Checks each file of the set where it belongs (`base`, default the set's
 * directory), then, while any is incomplete, the `extra` files (PAR1 files
 * among them are skipped) for complete copies under other names.
 */
export function checkPar1Set(set: Par1Set, options: { base?: string; extra?: readonly string[] } = {}): Par1Check {
  const base = options.base ?? dirname(set.setPath);
  const sizes = new Set(set.files.map((entry) => entry.size));
  const checks: Par1FileCheck[] = set.files.map((entry) => {
    const path = join(base, entry.name);
    const print = fingerprint(path, sizes);
    if (!print) return { entry, path, status: existsSync(path) ? "damaged" : "missing" };
    return matches(entry, print, set.firstHashesValid) ? { entry, path, status: "found", source: path } : { entry, path, status: "damaged" };
  });
  const unmatched: string[] = [];
  const targets = new Set(checks.map((check) => resolve(check.path)));
  for (const file of options.extra ?? []) {
    if (checks.every((check) => check.source !== undefined)) break;
    if (isPar1Name(file) || targets.has(resolve(file))) continue;
    const print = fingerprint(file, sizes);
    if (!print) continue;
    const index = checks.findIndex((check) => check.source === undefined && matches(check.entry, print, set.firstHashesValid));
    if (index < 0) unmatched.push(file);
    else checks[index] = { ...checks[index], status: "renamed", source: file };
  }
  const needed = checks.filter((check) => check.source === undefined).length;
  return { set, files: checks, unmatched, needed, repairable: needed <= set.volumes.length };
}
