import { statSync } from "node:fs";
import { join } from "node:path";
import type { Output } from "../../cli/output.ts";
import { BlaineError, ExitCode } from "../../errors.ts";
import { formatBytes } from "../../size.ts";
import { deleteSubvolume, snapshotReadOnly } from "../../system/btrfs.ts";
import { rsyncMirror, type RsyncSummary } from "../../system/rsync.ts";
import { throwIfAborted, withChain } from "../chain.ts";
import type { MirrorConfig } from "../config.ts";
import { gocryptfsPassword, requireKeyFile } from "../key.ts";
import { clockNow } from "../../clock.ts";
import { planRotation } from "../rotation.ts";
import { listSnapshots, openStore, requireOpenableEncryption, SNAPSHOTS_DIRECTORY } from "../store.ts";
import { MirrorState } from "../state.ts";

/**
 * `blaine mirror backup`: opens the store, rotates, then rsyncs each
 * directory into its subvolume (through gocryptfs when so encrypted).
 * The rotation comes first, as in mnemosyne: when due, a read-only
 * snapshot of the live subvolume keeps the state the copy is about to
 * overwrite, so `stages` snapshots hold `stages` past states (taken after
 * the copy, the newest would equal the live copy and keep one fewer).
 * planRotation decides what is taken (named by the time of the backup it
 * holds) and dropped; this records in the store's state file that a copy
 * has begun (the live copy is then no point in time) and, once rsync
 * completes, its time.
 */
export async function backupMirror(config: MirrorConfig, output: Output): Promise<number> {
  requireOpenableEncryption(config);
  requireKeyFile(config);
  for (const [index, { directory }] of config.local.directories.entries()) {
    if (!statSync(directory, { throwIfNoEntry: false })?.isDirectory()) throw new BlaineError(`local.directories[${index}].directory: ${directory} is not a directory`, ExitCode.usage);
  }
  const password = config.store.encryption === "gocryptfs" ? gocryptfsPassword(config) : undefined;
  const now = clockNow();
  const showProgress = !output.json && Boolean(process.stderr.isTTY);
  return withChain(config.file, "command", async (chain, signal) => {
    const root = await openStore(chain, config, { readonly: false });
    const state = MirrorState.read(root, config.store.name);

    const taken: string[] = [];
    const dropped: string[] = [];
    const skipped: string[] = [];
    const since = new Map<string, Date | undefined>();
    const existing = listSnapshots(root).map((snapshot) => snapshot.name);
    for (const { key } of config.local.directories) {
      throwIfAborted(signal);
      const plan = planRotation(key, existing, now, state.of(key), config.strategy);
      if (plan.take) {
        await snapshotReadOnly(join(root, key), join(root, SNAPSHOTS_DIRECTORY, plan.take));
        taken.push(plan.take);
      }
      if (plan.skipped) {
        skipped.push(key);
        output.say(plan.skipped === "first" ? `${key}: no snapshot (the first backup: nothing to keep yet)` : `${key}: no snapshot (the copy since the last one did not complete: not a point in time)`);
      }
      for (const name of plan.drop) {
        await deleteSubvolume(join(root, SNAPSHOTS_DIRECTORY, name));
        dropped.push(name);
      }
      since.set(key, plan.since);
    }
    if (taken.length > 0) output.say(`Snapshots taken (each the copy of the backup at its date): ${taken.join(", ")}`);
    else if (skipped.length === 0) output.say(`No snapshot due (every ${config.strategy.rotateHours} h).`);
    if (dropped.length > 0) output.say(`Snapshots deleted (beyond ${config.strategy.stages}): ${dropped.join(", ")}`);

    const copied: { key: string; directory: string; summary: RsyncSummary }[] = [];
    for (const { key, directory } of config.local.directories) {
      throwIfAborted(signal);
      // From the copy's first write until rsync completes, the live copy is no backup's content.
      state.set(key, { rotated: since.get(key) });
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
      // The first completed backup starts the rotation period.
      state.set(key, { completed: now, rotated: since.get(key) ?? now });
      copied.push({ key, directory, summary });
    }
    for (const { key, summary } of copied) {
      output.say(`${key}: ${summary.filesTransferred} files copied, ${formatBytes(summary.bytesSent)} sent (${formatBytes(summary.totalFileBytes)} mirrored)`);
    }
    output.result({
      directories: copied.map(({ key, directory, summary }) => ({ key, directory, ...summary })),
      snapshots: { taken, dropped, skipped },
    });
    return ExitCode.ok;
  });
}
