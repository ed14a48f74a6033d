import { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { selectFiles } from "../catalog/select-files.ts";
import { requireDb, type Settings } from "../config.ts";
import { ExitCode, type ExitCode as ExitCodeValue } from "../errors.ts";
import type { Output } from "./output.ts";
import { quotedPath } from "../fs/byte-names.ts";

/**
 * Lists archived files (all, or those matching PATH/GLOB arguments) with
 * size, mtime and disk. With --json, one JSON array; rows are streamed.
 */
export function listFiles(settings: Settings, patterns: readonly string[], output: Output): ExitCodeValue {
  const catalog = ArchiveCatalog.open(requireDb(settings), { readonly: true });
  try {
    const labels = new Map(
      (catalog.sqlite.query("SELECT id, label FROM disks").all() as { id: string; label: string }[]).map((row) => [row.id, row.label]),
    );
    let first = true;
    if (output.json) process.stdout.write("[");
    for (const file of selectFiles(catalog, patterns)) {
      const disk = labels.get(file.diskId) ?? file.diskId;
      if (output.json) {
        const row = { path: file.path, kind: file.kind, size: file.size, mtime: new Date(file.mtimeMs).toISOString(), mode: file.mode, hash: file.hash, linkTarget: file.linkTarget, disk };
        process.stdout.write(`${first ? "\n" : ",\n"}${JSON.stringify(row)}`);
      } else {
        const when = new Date(file.mtimeMs).toISOString().slice(0, 19).replace("T", " ");
        const name = file.kind === "symlink" ? `${file.path} -> ${file.linkTarget}` : file.path;
        process.stdout.write(`${String(file.size).padStart(14)}  ${when}  ${disk.padEnd(8)}  ${quotedPath(name).slice(1, -1)}\n`);
      }
      first = false;
    }
    if (output.json) process.stdout.write(first ? "]\n" : "\n]\n");
    return ExitCode.ok;
  } finally {
    catalog.close();
  }
}
