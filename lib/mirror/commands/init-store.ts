import { closeSync, existsSync, fsyncSync, ftruncateSync, mkdirSync, openSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Output } from "../../cli/output.ts";
import { BlaineError, ExitCode } from "../../errors.ts";
import { fsyncDirectory } from "../../fs/atomic.ts";
import { formatBytes } from "../../size.ts";
import { createSubvolume, makeBtrfs } from "../../system/btrfs.ts";
import { hasDeviceMapper, luksFormat, NO_DEVICE_MAPPER } from "../../system/cryptsetup.ts";
import { gocryptfs } from "../../system/gocryptfs.ts";
import { withChain } from "../chain.ts";
import type { MirrorConfig } from "../config.ts";
import { gocryptfsPassword, requireKeyFile } from "../key.ts";
import { mountRemote, openImageDevice, remoteName, SNAPSHOTS_DIRECTORY } from "../store.ts";

/**
 * `blaine mirror init-store`: the image file of `store.size` (sparse) on
 * the remote, encrypted (LUKS2, or gocryptfs inside), btrfs in it, one
 * subvolume per directory key. Everything is made under `NAME.partial` and
 * renamed to NAME last, so a store that exists is whole; an existing store
 * is refused, a partial one (a killed or failed init-store) made again.
 */
export async function initStore(config: MirrorConfig, output: Output): Promise<number> {
  requireKeyFile(config);
  const password = config.store.encryption === "gocryptfs" ? gocryptfsPassword(config) : undefined;
  return withChain(config.file, "command", async (chain) => {
    const remote = await mountRemote(chain, config, false);
    const image = join(remote, config.store.name);
    const where = `${config.store.name} on ${remoteName(config)}`;
    if (existsSync(image)) throw new BlaineError(`the store ${where} already exists; init-store never overwrites a store`, ExitCode.usage);
    const partial = `${image}.partial`;
    rmSync(partial, { force: true });
    const fd = openSync(partial, "wx", 0o600);
    try {
      ftruncateSync(fd, config.store.sizeBytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    output.say(`Image ${where}: ${formatBytes(config.store.sizeBytes)} (sparse).`);
    if (config.store.encryption === "luks") {
      await luksFormat(partial, config.store.keyfile);
      output.say(`Formatted LUKS2 with the key file ${config.store.keyfile}.`);
      if (!hasDeviceMapper()) {
        throw new BlaineError(
          `${NO_DEVICE_MAPPER}. The image ${config.store.name}.partial is formatted LUKS2 (cryptsetup luksDump shows it) but holds no file system yet; init-store on a machine with device-mapper makes it again.`,
          ExitCode.usage,
        );
      }
    }
    // mkfs runs on the device the chain opened: the loop, or LUKS' mapping on it.
    const device = await openImageDevice(chain, config, partial, false);
    await makeBtrfs(device, config.store.name.slice(0, 255));
    const mounted = chain.directory("store-new");
    await chain.mount(device, mounted, { type: "btrfs", readonly: false }, `the new store ${config.store.name}`);
    mkdirSync(join(mounted, SNAPSHOTS_DIRECTORY), { mode: 0o700 });
    for (const { key } of config.local.directories) {
      await createSubvolume(join(mounted, key));
      if (password !== undefined) await gocryptfs.init(join(mounted, key), password);
    }
    await chain.release(partial);
    const file = openSync(partial, "r");
    try {
      fsyncSync(file);
    } finally {
      closeSync(file);
    }
    renameSync(partial, image);
    fsyncDirectory(dirname(image));
    output.say(`Store ${where} made: btrfs with the subvolumes ${config.local.directories.map((d) => d.key).join(", ")} (${config.store.encryption}).`);
    output.result({ store: config.store.name, remote: remoteName(config), sizeBytes: config.store.sizeBytes, encryption: config.store.encryption, keys: config.local.directories.map((d) => d.key) });
    return ExitCode.ok;
  });
}
