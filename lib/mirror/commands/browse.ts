import { existsSync, mkdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Output } from "../../cli/output.ts";
import { BlaineError, ExitCode } from "../../errors.ts";
import { mountAt } from "../../system/fuse-mount.ts";
import { unmountBrowse, withChain } from "../chain.ts";
import type { MirrorConfig } from "../config.ts";
import { gocryptfsPassword, requireKeyFile } from "../key.ts";
import { listSnapshots, openStore, requireOpenableEncryption, SNAPSHOTS_DIRECTORY } from "../store.ts";

/**
 * `blaine mirror mount -c FILE DIR`: the store read-only at DIR for a
 * person to browse: DIR/KEY (the latest copy) and DIR/snapshots/KEY-DATE.
 * With gocryptfs, DIR is a small tmpfs holding one read-only gocryptfs
 * mount per subvolume and snapshot; with LUKS, the btrfs itself.
 * `blaine mirror unmount` takes it all down.
 */
export async function mountMirror(config: MirrorConfig, mountpoint: string | undefined, output: Output): Promise<number> {
  if (!mountpoint) throw new BlaineError("usage: blaine mirror mount -c FILE.json DIR", ExitCode.usage);
  const target = resolve(mountpoint);
  if (!statSync(target, { throwIfNoEntry: false })?.isDirectory()) throw new BlaineError(`${mountpoint} is not a directory`, ExitCode.usage);
  if (mountAt(target)) throw new BlaineError(`${mountpoint} is already a mountpoint`, ExitCode.usage);
  requireOpenableEncryption(config);
  requireKeyFile(config);
  const password = config.store.encryption === "gocryptfs" ? gocryptfsPassword(config) : undefined;
  return withChain(
    config.file,
    "browse",
    async (chain) => {
      const root = await openStore(chain, config, { readonly: true });
      const snapshots = listSnapshots(root);
      if (password === undefined) {
        await chain.mount(root, target, { options: "bind" }, `the store at ${mountpoint}`);
      } else {
        await chain.mount("tmpfs", target, { type: "tmpfs", options: "size=1m,mode=0755" }, `a directory tree at ${mountpoint}`);
        for (const { key } of config.local.directories) {
          if (!existsSync(join(root, key))) continue;
          mkdirSync(join(target, key));
          await chain.mountGocryptfs(join(root, key), join(target, key), password, { readonly: true, what: key });
        }
        mkdirSync(join(target, SNAPSHOTS_DIRECTORY));
        for (const { name } of snapshots) {
          mkdirSync(join(target, SNAPSHOTS_DIRECTORY, name));
          await chain.mountGocryptfs(join(root, SNAPSHOTS_DIRECTORY, name), join(target, SNAPSHOTS_DIRECTORY, name), password, { readonly: true, what: name });
        }
      }
      chain.markComplete();
      output.say(`The mirror is mounted read-only at ${mountpoint}: ${config.local.directories.map((d) => d.key).join(", ")} and ${snapshots.length} snapshots under ${SNAPSHOTS_DIRECTORY}/.`);
      output.say(`Take it down with: blaine mirror unmount -c ${config.file}`);
      output.result({ mountpoint: target, snapshots: snapshots.map((s) => s.name) });
      return ExitCode.ok;
    },
    { mountpoint: target },
  );
}

export async function unmountMirror(config: MirrorConfig, mountpoint: string | undefined, output: Output): Promise<number> {
  const taken = await unmountBrowse(config.file, mountpoint ? resolve(mountpoint) : undefined);
  if (taken.length === 0) throw new BlaineError(`the store of ${config.file} is not mounted${mountpoint ? ` at ${mountpoint}` : ""}`);
  for (const record of taken) output.say(`Unmounted ${record.mountpoint}.`);
  output.result({ unmounted: taken.map((record) => record.mountpoint) });
  return ExitCode.ok;
}
