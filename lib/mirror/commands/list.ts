import { join } from "node:path";
import type { Output } from "../../cli/output.ts";
import { ExitCode } from "../../errors.ts";
import { formatBytes } from "../../size.ts";
import { subvolumeUsage } from "../../system/btrfs.ts";
import { withChain } from "../chain.ts";
import type { MirrorConfig } from "../config.ts";
import { listSnapshots, openStore, SNAPSHOTS_DIRECTORY } from "../store.ts";

/** `blaine mirror list`: the snapshots per key, with dates and sizes (all the snapshot refers to, and what only it holds). */
export async function listMirror(config: MirrorConfig, output: Output): Promise<number> {
  return withChain(config.file, "command", async (chain) => {
    const root = await openStore(chain, config, { readonly: true });
    const snapshots = [];
    for (const snapshot of listSnapshots(root)) {
      const usage = await subvolumeUsage(join(root, SNAPSHOTS_DIRECTORY, snapshot.name));
      snapshots.push({ key: snapshot.key, name: snapshot.name, date: snapshot.date.toISOString(), ...usage });
    }
    for (const { key } of config.local.directories) {
      const mine = snapshots.filter((snapshot) => snapshot.key === key);
      output.say(`${key}: ${mine.length} snapshots`);
      for (const snapshot of mine) output.say(`  ${snapshot.name}  ${snapshot.date}  ${formatBytes(snapshot.totalBytes)} (${formatBytes(snapshot.exclusiveBytes)} its own)`);
    }
    output.result({ snapshots });
    return ExitCode.ok;
  });
}
