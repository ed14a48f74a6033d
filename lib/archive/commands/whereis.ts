import { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { selectFiles } from "../catalog/select-files.ts";
import { DeferredQueue } from "../catalog/deferred-actions-table.ts";
import { requireDb, type Settings } from "../settings.ts";
import { ExitCode, UsageError, type ExitCode as ExitCodeValue } from "../../errors.ts";
import type { Output } from "../../cli/output.ts";
import { quotedPath } from "../../fs/byte-names.ts";

export interface WhereIs {
  readonly path: string;
  readonly disk: string;
  readonly hash: string;
  readonly size: number;
  /** The physical copies of that disk; `pending` when an action for this path still waits for the copy. */
  readonly copies: readonly { readonly id: string; readonly lastMountPath: string | null; readonly pending: boolean }[];
}

/** `blaine whereis PATH…`: which disk holds each archived path (directories and globs expand), and on which copies. */
export function whereIs(settings: Settings, patterns: readonly string[], output?: Output): { exitCode: ExitCodeValue; files: WhereIs[] } {
  if (patterns.length === 0) throw new UsageError("whereis: name at least one PATH (an archived path, a directory or a glob)");
  const catalog = ArchiveCatalog.open(requireDb(settings), { readonly: true });
  try {
    const labels = catalog.disks.labels();
    const queue = new DeferredQueue(catalog);
    const files: WhereIs[] = [];
    for (const file of selectFiles(catalog, patterns)) {
      const copies = catalog.disks.copiesOf(file.diskId).map((copy) => ({
        id: copy.id,
        lastMountPath: copy.lastMountPath,
        pending: queue.waitsFor(copy.id, file.path),
      }));
      files.push({ path: file.path, disk: labels.get(file.diskId) ?? file.diskId, hash: file.hash, size: file.size, copies });
    }
    if (files.length === 0) throw new UsageError(`nothing archived matches ${patterns.join(" ")}`);
    if (output) {
      for (const file of files) {
        const copies = file.copies.map((copy) => `${copy.lastMountPath ?? copy.id.slice(0, 8)}${copy.pending ? " (pending)" : ""}`).join(", ");
        output.say(`${quotedPath(file.path)}: disk "${file.disk}" on ${copies}`);
      }
      output.result({ files });
    }
    return { exitCode: ExitCode.ok, files };
  } finally {
    catalog.close();
  }
}
