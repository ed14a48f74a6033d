import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { BlaineError, ExitCode } from "../errors.ts";
import { resolveBlockDevice } from "../system/block-device.ts";
import { hasDeviceMapper, NO_DEVICE_MAPPER } from "../system/cryptsetup.ts";
import type { MirrorChain } from "./chain.ts";
import { cifsShare, type MirrorConfig } from "./config.ts";
import { parseSnapshotName, type SnapshotName } from "./rotation.ts";

/**
 * Where things are in a mirror store and how the chain reaches them:
 * the remote file system holds the image `store.name`; the image holds
 * btrfs (inside LUKS, or directly with gocryptfs); btrfs holds one
 * subvolume per directory key at its top (`KEY/`) and the read-only
 * snapshots under `snapshots/KEY-YYYYMMDD-HHMMSS`. With gocryptfs each
 * subvolume is a gocryptfs cipher directory, so its snapshots are too.
 */
export const SNAPSHOTS_DIRECTORY = "snapshots";

/** The remote as the user wrote it, for messages. */
export function remoteName(config: MirrorConfig): string {
  return config.remote.type === "cifs" ? cifsShare(config.remote.volume) : config.remote.device;
}

/** Mounts the remote file system in a private directory of the chain; returns that directory. */
export async function mountRemote(chain: MirrorChain, config: MirrorConfig, readonly: boolean): Promise<string> {
  const remote = config.remote;
  const target = chain.directory("remote");
  if (remote.type === "cifs") {
    await chain.mountCifs({ share: cifsShare(remote.volume), username: remote.username, password: remote.password, options: remote.options }, target, readonly);
  } else {
    const device = await resolveBlockDevice(remote.device);
    await chain.mount(device, target, { readonly, options: remote.options }, `the remote ${remote.device}`);
  }
  return target;
}

/** LUKS stores need device-mapper: said before anything is mounted. */
export function requireOpenableEncryption(config: MirrorConfig): void {
  if (config.store.encryption === "luks" && !hasDeviceMapper()) throw new BlaineError(NO_DEVICE_MAPPER, ExitCode.usage);
}

/** Opens the store: remote, image on a loop device, LUKS when so encrypted, btrfs. Returns btrfs' mountpoint. */
export async function openStore(chain: MirrorChain, config: MirrorConfig, options: { readonly readonly: boolean }): Promise<string> {
  requireOpenableEncryption(config);
  const remote = await mountRemote(chain, config, options.readonly);
  const image = join(remote, config.store.name);
  if (!existsSync(image)) {
    throw new BlaineError(`the remote ${remoteName(config)} holds no store ${config.store.name}: run blaine mirror init-store -c ${config.file} first`);
  }
  return mountImage(chain, config, image, options.readonly);
}

/** The image's block device in the chain: its loop device, and LUKS' mapping on it when so encrypted. */
export async function openImageDevice(chain: MirrorChain, config: MirrorConfig, image: string, readonly: boolean): Promise<string> {
  const loop = await chain.attachLoop(image, readonly);
  return config.store.encryption === "luks" ? chain.luksOpen(loop, config.store.keyfile, readonly) : loop;
}

/** The image's btrfs mounted in the chain (through LUKS when so encrypted). */
export async function mountImage(chain: MirrorChain, config: MirrorConfig, image: string, readonly: boolean): Promise<string> {
  const device = await openImageDevice(chain, config, image, readonly);
  const root = chain.directory("store");
  await chain.mount(device, root, { type: "btrfs", readonly, options: "noatime" }, `the store ${config.store.name}`);
  return root;
}

/** The snapshots in a mounted store, oldest first. */
export function listSnapshots(root: string): SnapshotName[] {
  const dir = join(root, SNAPSHOTS_DIRECTORY);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map(parseSnapshotName)
    .filter((snapshot): snapshot is SnapshotName => snapshot !== undefined)
    .sort((a, b) => a.date.getTime() - b.date.getTime() || a.name.localeCompare(b.name));
}
