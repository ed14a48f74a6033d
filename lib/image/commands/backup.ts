import { ExitCode } from "../../errors.ts";
import type { Output } from "../../cli/output.ts";
import { formatBytes, formatDuration } from "../../size.ts";
import imageBackup from "../../../pipelines/image-backup.ts";
import { abandonImageBackup, finishImageBackup, openImageBackup, type ImageBackupRequest, type ImageBackupResult } from "../backup-run.ts";
import type { ImageSettings } from "../settings.ts";
import { imageProgress, interruptedExit, withInterrupt } from "./image-progress.ts";
import { openImageStore, withCatalog } from "./open-image.ts";

/**
 * `blaine image backup SOURCE NAME [--snapshot] [--hints] [--from] [--block-size] [--compress]`:
 * a progress line on a terminal, a summary at the end. Ctrl-C (or SIGTERM)
 * stops it where a kill -9 would: the version stays incomplete (never a
 * base; `rm` removes it, `cleanup --full` the chunks only it wrote); exit
 * 130 (143). `result` is undefined then.
 */
export async function backupImage(
  settings: ImageSettings,
  request: Omit<ImageBackupRequest, "blockSize" | "compression">,
  output: Output,
): Promise<{ exitCode: ExitCode; result?: ImageBackupResult }> {
  const store = await openImageStore(settings, { create: true });
  return withCatalog(settings, true, async (catalog) => {
    const run = await openImageBackup(catalog, store, { ...request, blockSize: settings.blockSize, compression: settings.compression });
    const { counts } = run;
    const started = performance.now();
    const progress = imageProgress(request.name, {
      done: () => counts.bytesRead,
      planned: run.plannedBytes,
      verb: "read",
      detail: () => `${formatBytes(counts.bytesWritten)} written`,
    }).start();
    let outcome;
    try {
      outcome = await withInterrupt(async (signal) => {
        await imageBackup(run, signal);
        return finishImageBackup(run);
      });
    } catch (error) {
      progress.stop();
      await abandonImageBackup(run).catch(() => {});
      throw error;
    }
    progress.stop();
    if (outcome.interrupted) {
      run.workers.close();
      await run.source.close().catch(() => {});
      console.error(
        `${request.name}: interrupted after ${formatBytes(counts.bytesRead)} read; version ${run.uid} is left incomplete: never a base for --from (blaine image rm ${run.uid} removes it, cleanup --full the chunks only it wrote)`,
      );
      output.result({ uid: run.uid, status: "incomplete", interrupted: outcome.interrupted, bytesRead: counts.bytesRead, bytesWritten: counts.bytesWritten });
      return { exitCode: interruptedExit(outcome.interrupted) };
    }
    const result = outcome.value;
    output.say(result.uid);
    if (!output.json) {
      const seconds = (performance.now() - started) / 1000;
      console.error(
        `${request.name}: ${formatBytes(result.bytesRead)} read, ${formatBytes(result.bytesWritten)} written, ${formatBytes(result.bytesDeduplicated)} deduplicated, ${formatBytes(result.bytesSparse)} sparse, in ${formatDuration(seconds * 1000)} (${formatBytes(result.bytesRead / Math.max(seconds, 0.001))}/s)`,
      );
    }
    output.result(result);
    return { exitCode: ExitCode.ok, result };
  });
}
