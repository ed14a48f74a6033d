import { ExitCode } from "../../errors.ts";
import type { Output } from "../../cli/output.ts";
import { formatBytes } from "../../size.ts";
import imageBackup from "../../../pipelines/image-backup.ts";
import { abandonImageBackup, finishImageBackup, openImageBackup, type ImageBackupRequest, type ImageBackupResult } from "../backup-run.ts";
import type { ImageSettings } from "../settings.ts";
import { openImageStore, withCatalog } from "./open-image.ts";

/** `blaine image backup SOURCE NAME [--snapshot] [--hints] [--from] [--block-size] [--compress]`. */
export async function backupImage(
  settings: ImageSettings,
  request: Omit<ImageBackupRequest, "blockSize" | "compression">,
  output: Output,
): Promise<{ exitCode: ExitCode; result: ImageBackupResult }> {
  const store = await openImageStore(settings, { create: true });
  return withCatalog(settings, true, async (catalog) => {
    const run = await openImageBackup(catalog, store, { ...request, blockSize: settings.blockSize, compression: settings.compression });
    let result: ImageBackupResult;
    try {
      await imageBackup(run);
      result = await finishImageBackup(run);
    } catch (error) {
      await abandonImageBackup(run).catch(() => {});
      throw error;
    }
    output.say(result.uid);
    if (!output.json) {
      console.error(
        `${request.name}: ${formatBytes(result.bytesRead)} read, ${formatBytes(result.bytesWritten)} written, ${formatBytes(result.bytesDeduplicated)} deduplicated, ${formatBytes(result.bytesSparse)} sparse`,
      );
    }
    output.result(result);
    return { exitCode: ExitCode.ok, result };
  });
}
