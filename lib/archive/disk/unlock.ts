import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { BlaineError, ExitCode, UsageError } from "../../errors.ts";
import { syncFileSystem, syncThroughMount } from "../../fs/atomic.ts";
import { KeySource, type KeyCandidate } from "../../secrets/key-source.ts";
import { isCipherName, type CipherName, type CipherTool } from "../../system/cipher-tool.ts";
import { hasProgram } from "../../system/exec.ts";
import { notInstalled } from "../../system/tool-versions.ts";
import { listMounts, unmountFuse, waitUntilMounted } from "../../system/fuse-mount.ts";
import { gocryptfs } from "../../system/gocryptfs.ts";
import { cleanStaleMounts, createMountRecord, mountHolder, readMountRecords, removeMountRecord, type MountRecord } from "../../system/mount-records.ts";
import { securefs } from "../../system/securefs.ts";
import type { DiskLabel } from "./disk-label.ts";

/**
 * Encrypted archive disks. On such a disk only `DIR/.blaine/disk.json`
 * (which names the cipher) is in the clear; everything else lives in the
 * cipher directory `DIR/encrypted/` and is seen through a private mountpoint,
 * which becomes the disk's root for the rest of Blaine. Every mount a
 * command makes is taken down when it ends (`releaseDiskMounts`), on
 * SIGINT/SIGTERM, or, if it was killed, by the next command.
 */

/** The cipher directory inside an encrypted disk's directory. */
export const CIPHER_DIR = "encrypted";

export function cipherDirOf(dir: string): string {
  return join(dir, CIPHER_DIR);
}

export function cipherTool(name: CipherName): CipherTool {
  return name === "gocryptfs" ? gocryptfs : securefs;
}

export function requireCipherTool(name: string, what: string): CipherTool {
  if (!isCipherName(name)) throw new UsageError(`${what}: "${name}" is not gocryptfs or securefs`);
  const tool = cipherTool(name);
  if (!hasProgram(tool.program)) {
    throw new BlaineError(`${what}: ${notInstalled(tool.program)}; see blaine doctor`, ExitCode.failure);
  }
  return tool;
}

export interface UnlockOptions {
  /** verify, restore and dry runs mount read-only. */
  readonly readonly: boolean;
  readonly keys: KeySource;
}

/** The mounts this process made, by cipher directory. */
const held = new Map<string, MountRecord>();

/** Where the key came from that opened each of this process' mounts, by cipher directory (never the key). */
const openedWith = new Map<string, string>();

/**
 * Which key opened the encrypted disk in `dir` in this process (`--keyfile
 * /root/a.key`, `BLAINE_PASSWORD`, `the password typed`), for messages that
 * say so; undefined for a plain disk or one not mounted.
 */
export function keyThatOpened(dir: string): string | undefined {
  return openedWith.get(cipherDirOf(dir));
}

/**
 * The directory through which Blaine reads and writes the disk in `dir`:
 * `dir` itself for a plain disk; for an encrypted one, a private mountpoint
 * where its cipher directory is mounted with the first key that opens it.
 * A wrong key changes nothing and ends with "wrong key for disk NAME" (exit 2).
 */
export async function unlockDisk(dir: string, label: DiskLabel, options: UnlockOptions): Promise<string> {
  if (!label.cipher) return dir;
  const tool = requireCipherTool(label.cipher, `disk "${label.label}"`);
  const cipherDir = cipherDirOf(dir);
  if (!tool.isInitialised(cipherDir)) {
    throw new BlaineError(`${cipherDir} holds no ${tool.name} file system (disk "${label.label}" is damaged or incomplete)`, ExitCode.failure);
  }
  const mine = held.get(cipherDir);
  if (mine && (options.readonly || !mine.readonly)) return mine.mountpoint;
  if (mine) await releaseMount(mine);

  await cleanStaleMounts();
  refuseIfMountedElsewhere(cipherDir, label);
  return mountWithKeys(tool, cipherDir, label, options, "command");
}

/**
 * Mounts an encrypted disk for a person to browse (`blaine mount`): read-only,
 * at `mountpoint`, until `blaine unmount`.
 */
export async function mountForBrowsing(dir: string, label: DiskLabel, mountpoint: string, keys: KeySource): Promise<MountRecord> {
  if (!label.cipher) throw new UsageError(`disk "${label.label}" (${dir}) is not encrypted: its files can be read there directly`);
  const tool = requireCipherTool(label.cipher, `disk "${label.label}"`);
  const cipherDir = cipherDirOf(dir);
  await cleanStaleMounts();
  refuseIfMountedElsewhere(cipherDir, label);
  mkdirSync(mountpoint, { recursive: true });
  if (readdirSync(mountpoint).length > 0) throw new UsageError(`${mountpoint} is not empty: choose an empty directory to mount on`);
  await mountWithKeys(tool, cipherDir, label, { readonly: true, keys }, "browse", mountpoint);
  return readMountRecords().find((record) => record.mountpoint === mountpoint)!;
}

/**
 * Creates the cipher directory of a new encrypted disk (or finishes one a
 * killed `disk init` started) and mounts it read-write. Returns the
 * mountpoint, the new disk's root.
 */
export async function createEncryptedDisk(dir: string, label: DiskLabel, keys: KeySource): Promise<string> {
  const tool = requireCipherTool(label.cipher!, "--encrypt");
  const cipherDir = cipherDirOf(dir);
  if (!tool.isInitialised(cipherDir)) {
    if (existsSync(cipherDir) && readdirSync(cipherDir).length > 0) {
      throw new UsageError(`${cipherDir} is not empty and holds no ${tool.name} file system: refusing to encrypt over it`);
    }
    const key = await keys.forNewDisk(label.label);
    mkdirSync(cipherDir, { recursive: true });
    await tool.init(cipherDir, key.password);
  }
  await cleanStaleMounts();
  refuseIfMountedElsewhere(cipherDir, label);
  return mountWithKeys(tool, cipherDir, label, { readonly: false, keys }, "command");
}

function refuseIfMountedElsewhere(cipherDir: string, label: DiskLabel): void {
  const fsname = fsnameOf(label);
  const mounted = listMounts().find((mount) => mount.source === fsname || mount.source === cipherDir);
  if (!mounted) return;
  const record = readMountRecords().find((candidate) => candidate.mountpoint === mounted.mountpoint);
  const holder = record ? mountHolder(record) : undefined;
  const who = holder === "browse" ? " by blaine mount" : holder === "other-command" ? ` by blaine (pid ${record!.pid})` : "";
  throw new BlaineError(
    `disk "${label.label}" is already mounted at ${mounted.mountpoint}${who}; unmount it first (blaine unmount ${mounted.mountpoint})`,
    ExitCode.usage,
  );
}

/** The mount's source in mountinfo: ties a mount to one physical disk without escaping a path. */
function fsnameOf(label: DiskLabel): string {
  return `blaine:${label.copyId}`;
}

async function mountWithKeys(
  tool: CipherTool,
  cipherDir: string,
  label: DiskLabel,
  options: UnlockOptions,
  purpose: MountRecord["purpose"],
  mountpoint?: string,
): Promise<string> {
  const known = options.keys.known();
  if (known.length === 0 && !options.keys.interactive) {
    throw new UsageError(`disk "${label.label}" is encrypted: give --keyfile FILE or set BLAINE_PASSWORD`);
  }
  // The record exists before the mount does: a kill at any moment leaves something to clean.
  const record = createMountRecord({ cipherDir, cipher: tool.name, label: label.label, readonly: options.readonly, purpose }, mountpoint);
  installSignalCleanup();
  try {
    const tried: string[] = [];
    const attempt = async (key: KeyCandidate): Promise<boolean> => {
      tried.push(key.origin);
      const outcome = await tool.mount(cipherDir, record.mountpoint, key.password, { readonly: options.readonly, fsname: fsnameOf(label) });
      if (outcome === "wrong-key") return false;
      await waitUntilMounted(record.mountpoint);
      openedWith.set(cipherDir, key.origin);
      return true;
    };
    for (const key of known) {
      if (await attempt(key)) return hold(record);
    }
    for (let prompt = 0; prompt < 3 && options.keys.interactive; prompt++) {
      const key = await options.keys.ask(`Password for disk "${label.label}"`);
      if (key && (await attempt(key))) return hold(record);
    }
    throw new BlaineError(`wrong key for disk ${label.label} (tried ${[...new Set(tried)].join(", ")})`, ExitCode.usage);
  } catch (error) {
    await unmountFuse(record.mountpoint, { lazy: true }).catch(() => undefined);
    removeMountRecord(record);
    throw error;
  }
}

function hold(record: MountRecord): string {
  if (record.purpose === "command") {
    held.set(record.cipherDir, record);
    syncThroughMount(record.mountpoint, record.cipherDir);
  }
  return record.mountpoint;
}

async function releaseMount(record: MountRecord, options: { lazy?: boolean } = {}): Promise<void> {
  held.delete(record.cipherDir);
  openedWith.delete(record.cipherDir);
  syncThroughMount(record.mountpoint, undefined);
  await unmountFuse(record.mountpoint, { lazy: options.lazy ?? true });
  removeMountRecord(record);
  // What the FUSE daemon wrote last is on disk before the command reports success.
  if (!record.readonly) syncFileSystem(record.cipherDir);
}

/**
 * Unmounts every disk this process mounted. Called when a command ends,
 * after its catalogs are closed (bin/blaine.ts), and by pipeline scripts
 * that open disks themselves.
 */
export async function releaseDiskMounts(): Promise<void> {
  const errors: unknown[] = [];
  for (const record of [...held.values()]) {
    await releaseMount(record).catch((error) => errors.push(error));
  }
  if (errors.length > 0) throw errors[0];
}

let signalsInstalled = false;

/**
 * Ctrl-C and SIGTERM must not leave a disk mounted. A command that handles
 * the signal itself (blaine run aborts its pipeline, closes the catalogs and
 * returns) still has its own listener when this one runs: then the mounts
 * are released when the command returns. Otherwise, or at a second signal,
 * they are released here and the process exits.
 */
function installSignalCleanup(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    process.prependListener(signal, () => {
      if (process.listenerCount(signal) > 1 || held.size === 0) {
        if (held.size === 0 && process.listenerCount(signal) === 1) process.exit(code);
        return;
      }
      void (async () => {
        for (const record of [...held.values()]) await releaseMount(record, { lazy: true }).catch(() => undefined);
        process.exit(code);
      })();
    });
  }
}
