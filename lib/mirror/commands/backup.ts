import { statSync } from "node:fs";
import { join } from "node:path";
import type { Output } from "../../commands/output.ts";
import { BlaineError, ExitCode } from "../../errors.ts";
import { formatBytes } from "../../size.ts";
import { deleteSubvolume, snapshotReadOnly } from "../../system/btrfs.ts";
import { rsyncMirror, type RsyncSummary } from "../../system/rsync.ts";
import { throwIfAborted, withChain } from "../chain.ts";
import type { MirrorConfig } from "../config.ts";
import { gocryptfsPassword, requireKeyFile } from "../key.ts";
import { mirrorNow, planRotation } from "../rotation.ts";
import { listSnapshots, openStore, requireOpenableEncryption, SNAPSHOTS_DIRECTORY } from "../store.ts";

/**
 * `blaine mirror backup`: opens the store, rsyncs each directory into its
 * subvolume (through gocryptfs when so encrypted), then rotates: a
 * read-only snapshot `KEY-YYYYMMDD-HHMMSS` when the newest is `rotate`
 * hours old, the oldest beyond `stages` deleted. The snapshot is taken
 * after the copy (mnemosyne takes it before), so a snapshot's name is the
 * time of the content it holds, and a failed copy never becomes one.
 */
export async function backupMirror(config: MirrorConfig, output: Output): Promise<number> {
  requireOpenableEncryption(config);
  requireKeyFile(config);
  for (const [index, { directory }] of config.local.directories.entries()) {
    if (!statSync(directory, { throwIfNoEntry: false })?.isDirectory()) throw new BlaineError(`local.directories[${index}].directory: ${directory} is not a directory`, ExitCode.usage);
  }
  const password = config.store.encryption === "gocryptfs" ? gocryptfsPassword(config) : undefined;
  const now = mirrorNow();
  const showProgress = !output.json && Boolean(process.stderr.isTTY);
  return withChain(config.file, "command", async (chain, signal) => {
    const root = await openStore(chain, config, { readonly: false });
    const copied: { key: string; directory: string; summary: RsyncSummary }[] = [];
    for (const { key, directory } of config.local.directories) {
      throwIfAborted(signal);
      let target = join(root, key);
      if (password !== undefined) {
        target = chain.directory(`plain-${key}`);
        await chain.mountGocryptfs(join(root, key), target, password, { readonly: false, what: key });
      }
      output.say(`${key}: ${directory} → the mirror`);
      const summary = await rsyncMirror(directory, target, {
        exclude: config.local.exclude,
        signal,
        onProgress: showProgress ? (chunk) => process.stderr.write(chunk) : undefined,
      });
      if (password !== undefined) await chain.release(target);
      copied.push({ key, directory, summary });
    }
    throwIfAborted(signal);
    const taken: string[] = [];
    const dropped: string[] = [];
    const existing = listSnapshots(root).map((snapshot) => snapshot.name);
    for (const { key } of config.local.directories) {
      const plan = planRotation(key, existing, now, config.strategy);
      if (plan.take) {
        await snapshotReadOnly(join(root, key), join(root, SNAPSHOTS_DIRECTORY, plan.take));
        taken.push(plan.take);
      }
      for (const name of plan.drop) {
        await deleteSubvolume(join(root, SNAPSHOTS_DIRECTORY, name));
        dropped.push(name);
      }
    }
    for (const { key, summary } of copied) {
      output.say(`${key}: ${summary.filesTransferred} files copied, ${formatBytes(summary.bytesSent)} sent (${formatBytes(summary.totalFileBytes)} mirrored)`);
    }
    output.say(taken.length > 0 ? `Snapshots taken: ${taken.join(", ")}` : `No snapshot due (every ${config.strategy.rotateHours} h).`);
    if (dropped.length > 0) output.say(`Snapshots deleted (beyond ${config.strategy.stages}): ${dropped.join(", ")}`);
    output.result({
      directories: copied.map(({ key, directory, summary }) => ({ key, directory, ...summary })),
      snapshots: { taken, dropped },
    });
    return ExitCode.ok;
  });
}
